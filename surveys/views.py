"""The participant questionnaire: one page per private link.

The HTTP contract is ``docs/questionnaire-contract.md``. Views stay thin: pick the
language, find the participant, call a service, render. Every rule violation a service
raises is turned into a page (and status) in one place, ``_violation_response``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_http_methods

from .answers import InstrumentForm
from .draft_saves import draft_save_wait
from .errors import AlreadySubmitted, AnswersInvalid, RuleViolation, SurveyClosed
from .links import link_opened
from .models import Instrument, Language, Participant, Question, Response
from .selectors import response_for_participant
from .services import response_draft_answers
from .submission import Link, link_for_token, response_save_draft, response_submit
from .token_attempts import failed_lookup, too_many_attempts_page

SAVE = "save"
SUBMIT = "submit"
JSON = "application/json"
HTML = "text/html"

RawValues = dict[str, list[str]]


# --- Language -------------------------------------------------------------------------
# Participants read Japanese unless they choose English: the invitation letters are in
# Japanese, and many phones in Tokyo send an English Accept-Language anyway. So the
# language is ``?lang=``, then the cookie the switch set, then the study's default; the
# browser's Accept-Language is deliberately not consulted.


def _supported(code: str | None) -> str | None:
    return code if code in Language.values else None


def _query_lang(request: HttpRequest) -> str | None:
    try:
        return request.GET.get("lang")
    except SuspiciousOperation:  # a query string with too many fields: the 400 page asks
        return None


def _activate_language(request: HttpRequest, default: str = Language.JA) -> str | None:
    """Activate the participant's language; returns the code to remember in the cookie
    when ``?lang=`` chose it, else ``None``."""
    chosen = _supported(_query_lang(request))
    language = (
        chosen
        or _supported(request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME))
        or _supported(default)
        or Language.JA
    )
    translation.activate(language)
    request.LANGUAGE_CODE = language
    return chosen


def _remember_language(response: HttpResponseBase, chosen: str | None) -> HttpResponseBase:
    if chosen:
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            chosen,
            max_age=settings.LANGUAGE_COOKIE_AGE,
            path=settings.LANGUAGE_COOKIE_PATH,
            domain=settings.LANGUAGE_COOKIE_DOMAIN,
            secure=settings.LANGUAGE_COOKIE_SECURE or settings.CSRF_COOKIE_SECURE,
            httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
            samesite=settings.LANGUAGE_COOKIE_SAMESITE or "Lax",
        )
    return response


def _wants_json(request: HttpRequest) -> bool:
    """JavaScript autosave asks for JSON; a browser's own form post prefers HTML."""
    return request.get_preferred_type([HTML, JSON]) == JSON


# --- What the form template shows -----------------------------------------------------


@dataclass(frozen=True)
class ChoiceField:
    code: str
    label: str
    input_id: str
    checked: bool
    exclusive: bool


@dataclass(frozen=True)
class QuestionField:
    """One question as the template draws it: its inputs, the participant's current
    values, its error, and the condition the JavaScript needs to show or hide it."""

    question: Question
    number: int  # its place among all questions: without JavaScript all are on the page
    input_kind: str  # radio, checkbox, textarea, number
    choices: list[ChoiceField]
    value: str
    error: str | None
    help_text: str
    required_if: str  # "required if ..." in words, for a required conditional question
    condition_source: str
    condition_choices: str
    shown: bool

    @property
    def code(self) -> str:
        return self.question.code

    @property
    def number_html(self) -> SafeString:
        return _number_html(self.code, self.number)

    @property
    def has_choices(self) -> bool:
        return self.input_kind in {"radio", "checkbox"}

    @property
    def input_id(self) -> str:
        """The first input: error-summary links and labels point here."""
        return self.choices[0].input_id if self.choices else f"q-{self.code}"

    @property
    def help_id(self) -> str:
        return f"help-{self.code}" if self.help_text else ""

    @property
    def error_id(self) -> str:
        return f"error-{self.code}" if self.error else ""

    @property
    def describedby(self) -> str:
        return " ".join(i for i in (self.help_id, self.error_id) if i)


def _as_lists(raw: Mapping[str, Any]) -> RawValues:
    values: RawValues = {}
    for code, value in raw.items():
        if isinstance(value, str):
            values[code] = [value]
        elif isinstance(value, Sequence):
            values[code] = [str(v) for v in value]
    return values


def _number_html(code: str, number: int) -> SafeString:
    """A question's number, marked so that the script can renumber the visible questions
    (a hidden conditional question leaves no gap: 1, 2, 3, 4, 5, not 1, 2, 3, 4, 6)."""
    return format_html('<span data-number-of="{}">{}</span>', code, number)


def _condition_words(
    form: InstrumentForm, question: Question, numbers: dict[str, int]
) -> tuple[SafeString, SafeString] | None:
    """The choices that make a conditional question apply, and the number of the question
    they belong to, ready to be put into a sentence; ``None`` for other questions."""
    source = question.condition_question
    if source is None:
        return None
    labels = [
        _("“%(label)s”") % {"label": c.label}
        for c in form.choices[source.code].values()
        if c.code in form.condition_codes[question.code]
    ]
    choices = format_html("{}", pgettext("list separator", ", ").join(labels))
    return choices, _number_html(source.code, numbers[source.code])


def _condition_hint(form: InstrumentForm, question: Question, numbers: dict[str, int]) -> str:
    """When to answer an optional conditional question, for those who see it without
    JavaScript and the instrument gives no help text of its own."""
    words = _condition_words(form, question, numbers)
    if words is None:
        return ""
    choices, number = words
    return format_html(
        _("Answer this only if you chose any of {choices} in question {number}."),
        choices=choices,
        number=number,
    )


def _required_if(form: InstrumentForm, question: Question, numbers: dict[str, int]) -> str:
    """A required conditional question is required only when it applies: without
    JavaScript (every question on the page) it says so in words instead of a bare
    "Required" mark. With JavaScript it is on the page only when it applies."""
    words = _condition_words(form, question, numbers) if question.required else None
    if words is None:
        return ""
    choices, number = words
    return format_html(
        _("Required if you chose any of {choices} in question {number}."),
        choices=choices,
        number=number,
    )


def _fields(
    form: InstrumentForm, values: RawValues, errors: Mapping[str, str]
) -> list[QuestionField]:
    clean, _errors = form.clean(values, complete=False)
    numbers = {q.code: n for n, q in enumerate(form.questions, start=1)}
    fields = []
    for question in form.questions:
        code = question.code
        given = values.get(code, [])
        if question.type == Question.Type.MULTIPLE:
            kind = "checkbox"
        elif question.has_choices:
            kind = "radio"
        elif question.type == Question.Type.NUMBER:
            kind = "number"
        else:
            kind = "textarea"
        choices = [
            ChoiceField(
                code=choice.code,
                label=choice.label,
                input_id=f"q-{code}-{i}",
                checked=choice.code in given,
                exclusive=choice.exclusive,
            )
            for i, choice in enumerate(form.choices[code].values())
        ]
        required_if = _required_if(form, question, numbers)
        # A required conditional question's "required if ..." already says when to answer.
        help_text = question.help or (
            "" if required_if else _condition_hint(form, question, numbers)
        )
        fields.append(
            QuestionField(
                question=question,
                number=numbers[code],
                input_kind=kind,
                choices=choices,
                value="" if question.has_choices else next(iter(given), ""),
                error=errors.get(code),
                help_text=help_text,
                required_if=required_if,
                condition_source=(
                    question.condition_question.code if question.condition_question else ""
                ),
                condition_choices=" ".join(sorted(form.condition_codes.get(code, ()))),
                shown=form.is_shown(question, clean),
            )
        )
    return fields


# --- Pages ----------------------------------------------------------------------------


# An untouched form's questions are the same for every participant of a published (so
# frozen) instrument in a language: rendered once per process, they make each first visit
# cheap (most of a page's cost is drawing ~30 choices). Forms with answers or errors are
# drawn each time.
_PRISTINE_QUESTIONS: dict[tuple[int, object, str], str] = {}
_PRISTINE_QUESTIONS_MAX = 64


def _pristine_questions(form: InstrumentForm) -> str | None:
    instrument = form.instrument
    if not instrument.is_frozen:
        return None
    key = (instrument.pk, instrument.published_at, translation.get_language() or "")
    html = _PRISTINE_QUESTIONS.get(key)
    if html is None:
        html = loader.render_to_string("surveys/_questions.html", {"fields": _fields(form, {}, {})})
        if len(_PRISTINE_QUESTIONS) >= _PRISTINE_QUESTIONS_MAX:
            _PRISTINE_QUESTIONS.pop(next(iter(_PRISTINE_QUESTIONS)))
        _PRISTINE_QUESTIONS[key] = html
    return html


def _form_page(
    request: HttpRequest,
    token: str,
    participant: Participant,
    instrument: Instrument,
    values: RawValues,
    errors: Mapping[str, str] | None = None,
    refusal: str = "",
    restored: bool = False,
) -> HttpResponse:
    """The form. ``refusal`` is the message of a refused request, shown in the error summary
    when no question carries an error of its own; ``restored`` says that the values are a
    draft kept from an earlier visit."""
    form = InstrumentForm.load(instrument)
    errors = errors or {}
    questions_html = _pristine_questions(form) if not values and not errors else None
    fields = [] if questions_html else _fields(form, values, errors)
    error_fields = [f for f in fields if f.error]
    saved = request.GET.get("saved") == "1" and not errors and not refusal
    context = {
        "participant": participant,
        "site": participant.site,
        "instrument": instrument,
        "questions_html": questions_html,
        "fields": fields,
        "error_fields": error_fields,
        "refusal": "" if error_fields else refusal,
        "saved": saved,
        "restored": restored and not saved and not errors and not refusal,
        "action_url": reverse("surveys:questionnaire", args=[token]),
    }
    return render(request, "surveys/questionnaire.html", context)


def _thanks_page(
    request: HttpRequest, participant: Participant, response: Response | None, status: int = 200
) -> HttpResponse:
    context = {
        "site": participant.site,
        "instrument": response.instrument if response else None,
    }
    return render(request, "surveys/thanks.html", context, status=status)


def _closed_page(request: HttpRequest, participant: Participant) -> HttpResponse:
    site = participant.site
    now = timezone.now()
    context = {
        "site": site,
        "not_yet": site.survey_opens_at is not None and now < site.survey_opens_at,
        "ended": site.survey_closes_at is not None and now >= site.survey_closes_at,
    }
    return render(request, "surveys/closed.html", context, status=403)


def _link_invalid_page(request: HttpRequest) -> HttpResponse:
    return render(request, "surveys/link_invalid.html", status=404)


def _json_refusal(exc: RuleViolation, status: int) -> JsonResponse:
    return JsonResponse(
        {"saved": False, "errors": exc.errors, "reason": exc.code, "message": exc.message},
        status=status,
    )


def _instrument_for(link: Link) -> Instrument | None:
    """The instrument to show again after a refusal: the response's as it is now."""
    response = response_for_participant(link.participant)
    return response.instrument if response else link.current_instrument()


def _violation_response(
    request: HttpRequest,
    token: str,
    link: Link,
    exc: RuleViolation,
    values: RawValues,
) -> HttpResponse:
    """The one place where a rule a service enforced becomes a page and a status."""
    wants_json = _wants_json(request)
    participant = link.participant
    if isinstance(exc, AnswersInvalid):
        if wants_json:
            return _json_refusal(exc, 400)
        instrument = _instrument_for(link)
        if instrument is None:
            return _closed_page(request, participant)
        return _form_page(
            request, token, participant, instrument, values, exc.errors, refusal=exc.message
        )
    if isinstance(exc, AlreadySubmitted):
        if wants_json:
            return _json_refusal(exc, 409)
        return _thanks_page(request, participant, response_for_participant(participant), 409)
    if isinstance(exc, SurveyClosed):
        if wants_json:
            return _json_refusal(exc, 403)
        return _closed_page(request, participant)
    if wants_json:
        return _json_refusal(exc, 400)
    return _bad_request_page(request)


@require_http_methods(["GET", "HEAD", "POST"])
def questionnaire(request: HttpRequest, token: str) -> HttpResponseBase:
    # With their response: a form page shows it, and a submission knows which path to take.
    link = link_for_token(token)
    default = link.site.study.default_language if link else Language.JA
    chosen = _activate_language(request, default)
    if link is None:
        # Only a failed lookup is counted (a cache round trip): valid links never are.
        wait = failed_lookup(request)
        page: HttpResponseBase = (
            _link_invalid_page(request) if wait is None else too_many_attempts_page(request, wait)
        )
    elif request.method == "POST":
        page = _post(request, token, link)
    else:
        page = _get(request, token, link)
    return _remember_language(page, chosen)


def _get(request: HttpRequest, token: str, link: Link) -> HttpResponse:
    participant, response = link.participant, link.response
    if response is not None and response.is_submitted:
        return _thanks_page(request, participant, response)
    if not participant.site.is_survey_open():
        return _closed_page(request, participant)
    if response is not None:
        draft = _as_lists(response_draft_answers(response))
        return _form_page(
            request, token, participant, response.instrument, draft, restored=bool(draft)
        )
    instrument = link.current_instrument()
    if instrument is None:
        return _closed_page(request, participant)
    # Before any response: the first opening is what the fieldwork watch counts (not a
    # HEAD, which link checkers send; a mail scanner's GET still counts, docs/fieldwork.md).
    if request.method == "GET":
        link_opened(participant=participant)
    return _form_page(request, token, participant, instrument, {})


def _post(request: HttpRequest, token: str, link: Link) -> HttpResponseBase:
    action = request.POST.get("action")
    # Every posted field goes to the services: they read the instrument's codes and ignore
    # the rest (csrfmiddlewaretoken, action, anything unknown).
    values: RawValues = {key: request.POST.getlist(key) for key in request.POST}
    language = translation.get_language() or Language.JA
    if action == SAVE:
        wait = draft_save_wait(request, link.participant)
        if wait is not None:
            return _too_many_saves(request, link.participant, wait)
    try:
        if action == SAVE:
            response_save_draft(participant=link, answers=values, language=language)
        elif action == SUBMIT:
            response_submit(participant=link, answers=values, language=language)
        else:
            return _bad_request_page(request)
    except RuleViolation as exc:
        return _violation_response(request, token, link, exc, values)
    url = reverse("surveys:questionnaire", args=[token])
    if action == SAVE:
        if _wants_json(request):
            return JsonResponse({"saved": True})
        return _see_other(f"{url}?saved=1")
    return _see_other(url)


def _too_many_saves(request: HttpRequest, participant: Participant, wait: int) -> HttpResponse:
    """429 with ``Retry-After``: this link saved its draft too often; nothing was stored."""
    message = _("Your answers are being saved too often. Wait a minute, then save again.")
    page: HttpResponse
    if _wants_json(request):
        page = JsonResponse(
            {"saved": False, "errors": {}, "reason": "throttled", "message": message},
            status=429,
        )
    else:
        context = {"site": participant.site, "message": message}
        page = render(request, "surveys/too_many_saves.html", context, status=429)
    page["Retry-After"] = str(wait)
    return page


def _see_other(url: str) -> HttpResponse:
    response = HttpResponse(status=303)
    response["Location"] = url
    return response


# --- Error pages (wired in config/urls.py and settings.CSRF_FAILURE_VIEW) -------------


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form older than its security token (or a browser refusing cookies): ask, in the
    participant's language, to reload and send again."""
    _activate_language(request)
    if _wants_json(request):
        return JsonResponse(
            {"saved": False, "errors": {}, "reason": "csrf", "message": _("Reload the page.")},
            status=403,
        )
    return render(request, "surveys/csrf_failure.html", {"reload_url": request.path}, status=403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponseBase:
    """Every unknown address looks like an invalid participant link: the same page."""
    chosen = _activate_language(request)
    return _remember_language(_link_invalid_page(request), chosen)


def _bad_request_page(request: HttpRequest) -> HttpResponse:
    return render(request, "surveys/bad_request.html", status=400)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """A request Django could not read (too large, too many fields, a broken body)."""
    _activate_language(request)
    return _bad_request_page(request)


def server_error(request: HttpRequest) -> HttpResponse:
    """Rendered without a request context, so that it works whatever failed."""
    _activate_language(request)
    return HttpResponse(loader.render_to_string("500.html"), status=500)


# Seconds a client is asked to wait when the database is unreachable: a restart or a
# failover takes about that long.
RETRY_AFTER = 120


def service_unavailable(request: HttpRequest) -> HttpResponse:
    """The database cannot be reached (config.errors decides): a 503 asking the participant
    to come back shortly, in their language. Like the 500 page, rendered without a request
    context (its context processors could touch the database) and from no stored data."""
    _activate_language(request)
    # Reloading is the retry for a page; after a POST it would lose the typed answers
    # (the page asks to go back instead).
    context = {"can_reload": request.method in {"GET", "HEAD"}}
    response = HttpResponse(loader.render_to_string("503.html", context), status=503)
    response["Retry-After"] = str(RETRY_AFTER)
    add_never_cache_headers(response)
    return response
