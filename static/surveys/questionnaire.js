/* Hyoka questionnaire: progressive enhancement only. Without this file the form works in
   full (the server checks conditions, exclusive choices and everything else).
   With it: conditional questions show and hide as the participant answers (their inputs
   disabled while hidden, so they are not sent, which is what the server does with them
   anyway), an exclusive choice such as "none" unticks the others, answers are saved as a
   draft a moment after each change, and focus moves to the error summary. */
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

  function autosave(form) {
    var status = form.querySelector("[data-autosave-status]");
    var tokenInput = form.querySelector('input[name="csrfmiddlewaretoken"]');
    var timer = null;
    var inFlight = false;
    var again = false;
    var sending = false;

    function say(message, state) {
      if (!status) {
        return;
      }
      status.textContent = message;
      status.setAttribute("data-state", state);
    }

    function time() {
      var now = new Date();
      return now.getHours() + ":" + String(now.getMinutes()).padStart(2, "0");
    }

    function save() {
      timer = null;
      if (sending) {
        return;
      }
      if (inFlight) {
        again = true;
        return;
      }
      inFlight = true;
      var data = new FormData(form);
      data.set("action", "save");
      say(form.getAttribute("data-msg-saving"), "saving");
      fetch(form.getAttribute("action") || window.location.pathname, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: {
          Accept: "application/json",
          "X-CSRFToken": tokenInput ? tokenInput.value : "",
        },
      })
        .then(function (response) {
          if (response.status === 409) {
            window.location.reload(); // sent from another window: show the thank-you page
            return;
          }
          return response.json().then(
            function (body) {
              if (response.ok && body.saved) {
                say(form.getAttribute("data-msg-saved").replace("{time}", time()), "saved");
              } else if (response.status === 400 && body.errors) {
                say(form.getAttribute("data-msg-invalid"), "error");
              } else {
                say(form.getAttribute("data-msg-failed"), "error");
              }
            },
            function () {
              say(form.getAttribute("data-msg-failed"), "error");
            }
          );
        })
        .catch(function () {
          say(form.getAttribute("data-msg-failed"), "error");
        })
        .then(function () {
          inFlight = false;
          if (again) {
            again = false;
            save();
          }
        });
    }

    function schedule() {
      if (timer) {
        window.clearTimeout(timer);
      }
      timer = window.setTimeout(save, AUTOSAVE_DELAY_MS);
    }

    form.addEventListener("change", schedule);
    form.addEventListener("input", function (event) {
      if (event.target.tagName === "TEXTAREA" || event.target.type === "text") {
        schedule();
      }
    });
    window.addEventListener("pageshow", function () {
      sending = false; // back from the next page (the browser's page cache)
    });
    form.addEventListener("submit", function () {
      // The button's own post carries the answers; no autosave may race it.
      sending = true;
      if (timer) {
        window.clearTimeout(timer);
      }
    });
  }

  function init() {
    focusErrorSummary();
    var form = document.querySelector("form[data-questionnaire]");
    if (!form) {
      return;
    }
    applyConditions(form);
    form.addEventListener("change", function (event) {
      applyExclusive(event.target);
      applyConditions(form);
    });
    if (window.fetch && window.FormData) {
      autosave(form);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
