/* Hyoka questionnaire: progressive enhancement only. Without this file the form works in
   full (the server checks conditions, exclusive choices and everything else).
   With it: conditional questions show and hide as the participant answers (their inputs
   disabled while hidden, so they are not sent, which is what the server does with them
   anyway) and the visible questions are numbered without gaps, an exclusive choice such as
   "none" unticks the others, answers are saved as a draft a moment after each change and
   whenever the page is hidden or the language switched, the buttons say "sending" and
   refuse a second press while the form is on its way, an error mark goes once its question
   is answered, and focus moves to the error summary. Every text it shows comes from the
   page (data-msg-* attributes), in the participant's language. */
(function () {
  "use strict";

  // Loaded in <head> without defer so that hidden questions never flash into view.
  document.documentElement.classList.add("js");

  var AUTOSAVE_DELAY_MS = 1500;

  function each(list, fn) {
    Array.prototype.forEach.call(list, fn);
  }

  function checkedValues(form, name) {
    var values = [];
    each(form.elements, function (el) {
      if (el.name === name && el.checked && !el.disabled) {
        values.push(el.value);
      }
    });
    return values;
  }

  function fieldsetFor(form, code) {
    return form.querySelector('fieldset[id="question-' + code + '"]');
  }

  function isShown(form, fieldset, seen) {
    var source = fieldset.getAttribute("data-condition-question");
    if (!source) {
      return true;
    }
    seen = seen || {};
    if (seen[source]) {
      return false; // a cycle in the definition: keep the question hidden
    }
    seen[source] = true;
    var sourceFieldset = fieldsetFor(form, source);
    if (sourceFieldset && !isShown(form, sourceFieldset, seen)) {
      return false;
    }
    var wanted = (fieldset.getAttribute("data-condition-choices") || "").split(" ");
    var chosen = checkedValues(form, source);
    return chosen.some(function (code) {
      return wanted.indexOf(code) !== -1;
    });
  }

  function applyConditions(form) {
    // Questions come in order, so a condition's source is settled before its dependents.
    each(form.querySelectorAll("fieldset[data-condition-question]"), function (fieldset) {
      var shown = isShown(form, fieldset);
      fieldset.setAttribute("data-shown", shown ? "true" : "false");
      each(fieldset.querySelectorAll("input, textarea, select"), function (el) {
        el.disabled = !shown;
      });
    });
  }

  function applyExclusive(input) {
    if (input.type !== "checkbox" || !input.checked) {
      return;
    }
    var fieldset = input.closest("fieldset");
    var exclusive = input.hasAttribute("data-exclusive");
    each(fieldset.querySelectorAll('input[type="checkbox"]'), function (other) {
      if (other !== input && (exclusive || other.hasAttribute("data-exclusive"))) {
        other.checked = false;
      }
    });
  }

  function focusErrorSummary() {
    var summary = document.getElementById("error-summary");
    if (!summary) {
      return;
    }
    summary.focus();
    // A link in the summary focuses its input and keeps the question text in view.
    each(summary.querySelectorAll("a[href^='#']"), function (link) {
      link.addEventListener("click", function (event) {
        var input = document.getElementById(link.getAttribute("href").slice(1));
        var fieldset = document.getElementById(link.getAttribute("data-fieldset"));
        if (!input) {
          return;
        }
        event.preventDefault();
        (fieldset || input).scrollIntoView();
        input.focus({ preventScroll: true });
      });
    });
  }

  function isAnswered(fieldset) {
    return Array.prototype.some.call(
      fieldset.querySelectorAll("input, textarea"),
      function (el) {
        if (el.disabled) {
          return false;
        }
        if (el.type === "radio" || el.type === "checkbox") {
          return el.checked;
        }
        return el.value.trim() !== "";
      }
    );
  }

  function dropFromDescribedBy(el, id) {
    var ids = (el.getAttribute("aria-describedby") || "").split(" ").filter(function (x) {
      return x && x !== id;
    });
    if (ids.length) {
      el.setAttribute("aria-describedby", ids.join(" "));
    } else {
      el.removeAttribute("aria-describedby");
    }
  }

  // The server's error mark goes once the question is answered (the server checks the
  // answer again when the form is sent); its entry in the error summary goes with it.
  function clearError(fieldset) {
    if (!fieldset || !fieldset.classList.contains("question--error") || !isAnswered(fieldset)) {
      return;
    }
    fieldset.classList.remove("question--error");
    var error = fieldset.querySelector(".question__error");
    if (error) {
      dropFromDescribedBy(fieldset, error.id);
      each(fieldset.querySelectorAll("[aria-describedby]"), function (el) {
        dropFromDescribedBy(el, error.id);
      });
      error.parentNode.removeChild(error);
    }
    each(fieldset.querySelectorAll("[aria-invalid]"), function (el) {
      el.removeAttribute("aria-invalid");
    });
    var summary = document.getElementById("error-summary");
    if (!summary) {
      return;
    }
    each(summary.querySelectorAll('a[data-fieldset="' + fieldset.id + '"]'), function (link) {
      var item = link.closest("li");
      item.parentNode.removeChild(item);
    });
    if (!summary.querySelector("li")) {
      if (summary.getAttribute("data-clean-title")) {
        document.title = summary.getAttribute("data-clean-title");
      }
      summary.parentNode.removeChild(summary);
    }
  }

  // Numbers follow the questions on screen: a hidden conditional question leaves no gap.
  // The server numbers every question (without JavaScript all of them are shown); each
  // number, wherever the page repeats it, is a [data-number-of] element.
  function renumber(form) {
    var numbers = {};
    var next = 0;
    each(form.querySelectorAll("fieldset.question"), function (fieldset) {
      if (fieldset.getAttribute("data-shown") !== "false") {
        next += 1;
        numbers[fieldset.id.slice("question-".length)] = next;
      }
    });
    each(document.querySelectorAll("[data-number-of]"), function (el) {
      var number = numbers[el.getAttribute("data-number-of")];
      if (number && el.textContent !== String(number)) {
        el.textContent = String(number);
      }
    });
  }

  function autosave(form, status) {
    var tokenInput = form.querySelector('input[name="csrfmiddlewaretoken"]');
    var url = form.getAttribute("action") || window.location.pathname;
    var timer = null;
    var inFlight = null; // the promise of the save on its way, if any
    var again = false;
    var changes = 0; // edits so far; the answers are stored up to savedChanges
    var savedChanges = 0;
    var blockedUntil = 0; // the server asked to wait (429 with Retry-After)

    function say(message, state) {
      status.textContent = message;
      status.setAttribute("data-state", state);
    }

    function time() {
      var now = new Date();
      return now.getHours() + ":" + String(now.getMinutes()).padStart(2, "0");
    }

    function dirty() {
      return changes !== savedChanges && !form.hasAttribute("data-sending");
    }

    function request(keepalive) {
      var upTo = changes;
      var data = new FormData(form);
      data.set("action", "save");
      return fetch(url, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        keepalive: keepalive,
        headers: {
          Accept: "application/json",
          "X-CSRFToken": tokenInput ? tokenInput.value : "",
        },
      }).then(function (response) {
        if (response.status === 409) {
          window.location.reload(); // sent from another window: show the thank-you page
          return;
        }
        if (response.status === 429) {
          var wait = parseInt(response.headers.get("Retry-After"), 10) || 60;
          blockedUntil = Date.now() + wait * 1000;
        }
        return response.json().then(
          function (body) {
            if (response.ok && body.saved) {
              savedChanges = Math.max(savedChanges, upTo);
              say(form.getAttribute("data-msg-saved").replace("{time}", time()), "saved");
            } else if (response.status === 400 && body.errors) {
              say(form.getAttribute("data-msg-invalid"), "error");
            } else {
              say(body.message || form.getAttribute("data-msg-failed"), "error");
            }
          },
          function () {
            say(form.getAttribute("data-msg-failed"), "error");
          }
        );
      });
    }

    function save() {
      timer = null;
      if (!dirty()) {
        return inFlight || Promise.resolve();
      }
      if (inFlight) {
        again = true;
        return inFlight;
      }
      say(form.getAttribute("data-msg-saving"), "saving");
      inFlight = request(false)
        .catch(function () {
          say(form.getAttribute("data-msg-failed"), "error");
        })
        .then(function () {
          inFlight = null;
          if (again) {
            again = false;
            return save();
          }
        });
      return inFlight;
    }

    function schedule() {
      changes += 1;
      if (timer) {
        window.clearTimeout(timer);
      }
      timer = window.setTimeout(save, AUTOSAVE_DELAY_MS);
    }

    // The page is going out of sight (another app, another tab, the in-app browser
    // closed, a link followed): save now what the delay has not saved yet. A keepalive
    // request outlives the page; it is one draft save like any other (same CSRF header,
    // same rate limit, not sent while the server asks to wait).
    function saveBeforeHiding() {
      if (!dirty() || Date.now() < blockedUntil) {
        return;
      }
      if (timer) {
        window.clearTimeout(timer);
        timer = null;
      }
      request(true).catch(function () {
        /* the page is gone or going: nothing more to tell */
      });
    }

    form.addEventListener("change", schedule);
    form.addEventListener("input", function (event) {
      if (event.target.tagName === "TEXTAREA" || event.target.type === "text") {
        schedule();
      }
    });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") {
        saveBeforeHiding();
      }
    });
    window.addEventListener("pagehide", saveBeforeHiding);

    // Switching language loads the page again from the stored draft: store it first, and
    // only then follow the link (a save sent while leaving could arrive after the new page
    // had been drawn from the old draft). When the draft cannot be stored (an answer the
    // server refuses, no network), the page stays and the status says why; a second press
    // switches all the same.
    var refusedSwitch = null;
    each(document.querySelectorAll(".language-switch a"), function (link) {
      link.addEventListener("click", function (event) {
        if ((!dirty() && !inFlight) || refusedSwitch === link) {
          return;
        }
        event.preventDefault();
        if (timer) {
          window.clearTimeout(timer);
          timer = null;
        }
        save().then(function () {
          if (dirty()) {
            refusedSwitch = link;
            return;
          }
          window.location.href = link.href;
        });
      });
    });
  }

  // A sent form says so: the buttons are disabled (a second press sends nothing) and the
  // pressed one reads "Sending…". Disabled buttons are left out of the posted form, so
  // the pressed button's action travels in a hidden field instead.
  function guardSubmission(form, status) {
    var buttons = form.querySelectorAll('button[type="submit"]');
    var carried = null;

    form.addEventListener("submit", function (event) {
      if (form.hasAttribute("data-sending")) {
        event.preventDefault();
        return;
      }
      var submitter = event.submitter || buttons[0];
      form.setAttribute("data-sending", "");
      form.setAttribute("aria-busy", "true");
      carried = document.createElement("input");
      carried.type = "hidden";
      carried.name = submitter.name;
      carried.value = submitter.value;
      form.appendChild(carried);
      each(buttons, function (button) {
        button.disabled = true;
      });
      if (submitter.getAttribute("data-label-busy")) {
        submitter.setAttribute("data-label", submitter.textContent);
        submitter.textContent = submitter.getAttribute("data-label-busy");
      }
      if (status && submitter.value === "submit") {
        status.textContent = form.getAttribute("data-msg-sending");
        status.setAttribute("data-state", "sending");
      }
    });

    // Back from the next page (the browser's page cache): the form may be used again.
    window.addEventListener("pageshow", function () {
      if (!form.hasAttribute("data-sending")) {
        return;
      }
      form.removeAttribute("data-sending");
      form.removeAttribute("aria-busy");
      if (carried && carried.parentNode) {
        carried.parentNode.removeChild(carried);
      }
      each(buttons, function (button) {
        button.disabled = false;
        if (button.hasAttribute("data-label")) {
          button.textContent = button.getAttribute("data-label");
          button.removeAttribute("data-label");
        }
      });
      if (status && status.getAttribute("data-state") === "sending") {
        status.textContent = "";
        status.removeAttribute("data-state");
      }
    });
  }

  function init() {
    focusErrorSummary();
    var form = document.querySelector("form[data-questionnaire]");
    if (!form) {
      return;
    }
    var status = form.querySelector("[data-autosave-status]");
    applyConditions(form);
    renumber(form);
    form.addEventListener("change", function (event) {
      applyExclusive(event.target);
      applyConditions(form);
      renumber(form);
      clearError(event.target.closest("fieldset"));
    });
    form.addEventListener("input", function (event) {
      clearError(event.target.closest("fieldset"));
    });
    guardSubmission(form, status);
    if (status && window.fetch && window.FormData && window.Promise) {
      autosave(form, status);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
