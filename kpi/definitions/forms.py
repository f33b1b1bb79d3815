"""Admin forms of the KPI app: a segment's conditions and a KPI's definition.

The rules themselves live in ``validation``; these forms only offer the right options
(the questions of the study's questionnaire, the segments of the KPI's study) and put
each rule's message at the field it is about.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any, cast

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator, capfirst
from django.utils.translation import gettext_lazy as _

from kpi.scoring.statistics import Comparator
from surveys.ids import as_id
from surveys.models import Choice, Question

from . import selectors
from .models import KPI, Clause, Segment
from .services import KPI_FIELDS, SuccessChoices
from .validation import validate_clause, validate_kpi

QUESTION_TEXT_CHARS = 60
TAGS_DATALIST_ID = "hyoka-clause-tags"


def plain_decimal(value: Decimal | None) -> str | None:
    """``70.0000`` as ``70`` and ``0.950`` as ``0.95`` (never ``7E+1``)."""
    return None if value is None else f"{value.normalize():f}"


def question_label(question: Question, *, with_study: bool = False) -> str:
    text = Truncator(" ".join(question.text.split())).chars(QUESTION_TEXT_CHARS)
    label = f"{question.code} — {text}"
    return f"{question.instrument.study.code} · {label}" if with_study else label


def choice_label(choice: Choice) -> str:
    tags = " ".join(f"#{tag}" for tag in choice.tags)
    return " ".join(filter(None, [choice.label, f"({choice.code})", tags]))


def segment_label(segment: Segment, *, with_study: bool = False) -> str:
    label = f"{segment.name} ({segment.code})"
    return f"{segment.study.code} · {label}" if with_study else label


class FieldErrorsMixin:
    """A rule's message about a field this form does not show (the list's editable
    columns, a read-only field) becomes a message about the whole row, named by the
    field, instead of a server error."""

    fields: dict[str, forms.Field]

    def add_error(self, field: str | None, error: Any) -> None:
        if field is None and isinstance(error, ValidationError) and hasattr(error, "error_dict"):
            shown: dict[str, Any] = {}
            other: list[str] = []
            model = self._meta.model  # type: ignore[attr-defined]
            for name, errors in error.error_dict.items():
                if name == NON_FIELD_ERRORS or name in self.fields:
                    shown[name] = errors
                    continue
                verbose = capfirst(model._meta.get_field(name).verbose_name)
                other.extend(f"{verbose}: {message}" for message in ValidationError(errors))
            if other:
                shown.setdefault(NON_FIELD_ERRORS, []).extend(ValidationError(other).error_list)
            error = ValidationError(shown)
        super().add_error(field, error)  # type: ignore[misc]


class KPIRulesMixin(FieldErrorsMixin):
    """The KPI as the form would save it meets ``validate_kpi``'s rules (checked, like a
    model's ``clean()``, after the fields), each message at its field."""

    instance: KPI

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]
        self.before_rules()
        try:
            validate_kpi(self.instance)
        except ValidationError as exc:
            self._update_errors(exc)  # type: ignore[attr-defined]

    def before_rules(self) -> None:
        """The instance as the form built it, before the rules read it."""


# --- Conditions of a segment -------------------------------------------------------------


class GroupedCheckboxes(forms.CheckboxSelectMultiple):
    """Checkboxes grouped by question, each group a ``<details>`` that opens without
    JavaScript; the groups of the condition's question and of ticked choices start open."""

    template_name = "admin/kpi/widgets/grouped_checkboxes.html"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.open_groups: set[str] = set()

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        groups = []
        for group_name, options, _index in context["widget"]["optgroups"]:
            opened = group_name in self.open_groups or any(o["selected"] for o in options)
            groups.append({"label": group_name, "options": options, "open": opened})
        context["widget"]["groups"] = groups
        return context

    def render(
        self,
        name: str,
        value: Any,
        attrs: dict[str, Any] | None = None,
        renderer: Any = None,
    ) -> SafeString:
        # The project's template engine (not the forms renderer) finds templates/admin/.
        return mark_safe(render_to_string(self.template_name, self.get_context(name, value, attrs)))  # noqa: S308


@dataclass
class ClauseOptions:
    """What a condition can refer to, computed once per formset: the choice questions
    of the segment's study (of every study while the segment has none yet)."""

    with_study: bool
    questions: QuerySet[Question]
    choices: QuerySet[Choice]
    question_options: list[tuple[Any, str]]
    choice_groups: list[tuple[str, list[tuple[int, str]]]]
    group_of_question: dict[int, str]
    tags: list[str]

    @classmethod
    def for_study(cls, study_id: int | None) -> ClauseOptions:
        questions = selectors.choice_questions(study_id)
        with_study = study_id is None
        by_question: dict[int, list[Choice]] = {}
        tags: set[str] = set()
        choices = selectors.choices_of(questions)
        for choice in choices.order_by(
            "question__instrument__study__code", "question__order", "order"
        ):
            by_question.setdefault(choice.question_id, []).append(choice)
            tags.update(choice.tags)
        options = cls(
            with_study=with_study,
            questions=questions,
            choices=choices,
            question_options=[("", "---------")],
            choice_groups=[],
            group_of_question={},
            tags=sorted(tags),
        )
        for question in questions:
            options.add_question(question, by_question.get(question.pk, []))
        return options

    def add_question(self, question: Question, choices: list[Choice]) -> None:
        label = question_label(question, with_study=self.with_study)
        self.question_options.append((question.pk, label))
        self.group_of_question[question.pk] = label
        self.choice_groups.append((label, [(c.pk, choice_label(c)) for c in choices]))


class ClauseForm(forms.ModelForm):
    """One condition: a question, the choices (or a tag) that count, and "did not choose"."""

    question = forms.ModelChoiceField(
        label=capfirst(_("question")),
        queryset=Question.objects.none(),
        # Empty gets the rule's own message ("Pick the question ...").
        required=False,
    )
    choices = forms.ModelMultipleChoiceField(
        label=capfirst(_("any of these choices")),
        queryset=Choice.objects.none(),
        required=False,
        widget=GroupedCheckboxes,
        help_text=_(
            "Tick the choices of the question above that count. Open a question's list to "
            "see its choices; choices of another question are refused."
        ),
    )

    class Meta:
        model = Clause
        fields = ("question", "choices", "tag", "negate")

    def __init__(self, *args: Any, segment: Segment, options: ClauseOptions, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.segment = segment
        questions, choices = options.questions, options.choices
        question_options = list(options.question_options)
        choice_groups = list(options.choice_groups)
        group_of_question = dict(options.group_of_question)
        # A condition written against an older version of the questionnaire keeps its
        # question and choices on offer, so that saving the segment does not lose them.
        old = self.instance.question if self.instance.pk else None
        if old is not None and old.pk not in group_of_question:
            label = question_label(old, with_study=options.with_study)
            kept = list(old.choices.all())
            questions = questions | Question.objects.filter(pk=old.pk)
            choices = choices | Choice.objects.filter(pk__in=[c.pk for c in kept])
            question_options.append((old.pk, label))
            choice_groups.append((label, [(c.pk, choice_label(c)) for c in kept]))
            group_of_question[old.pk] = label
        question_field = cast(forms.ModelChoiceField, self.fields["question"])
        question_field.queryset = questions
        question_field.choices = question_options
        choices_field = cast(forms.ModelMultipleChoiceField, self.fields["choices"])
        choices_field.queryset = choices
        choices_field.choices = choice_groups
        widget = choices_field.widget
        assert isinstance(widget, GroupedCheckboxes)
        chosen = as_id(self["question"].value())
        if chosen in group_of_question:
            widget.open_groups = {group_of_question[chosen]}
        # Suggests the study's tags: one <datalist> on the page (the segment's template).
        self.fields["tag"].widget.attrs["list"] = TAGS_DATALIST_ID

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        # The parent's own errors (no study yet) are shown there; a question that failed
        # its own field check has its message already.
        if self.segment.study_id is None or self.has_error("question"):
            return cleaned
        try:
            validate_clause(
                segment=self.segment,
                question=cleaned.get("question"),
                choices=cleaned.get("choices") or [],
                tag=cleaned.get("tag") or "",
            )
        except ValidationError as exc:
            self.add_error(None, exc)
        return cleaned


class ClauseFormSet(BaseInlineFormSet):
    """Computes the options once for all the segment's conditions (no query per row)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.options = ClauseOptions.for_study(self.instance.study_id)

    def get_form_kwargs(self, index: int | None) -> dict[str, Any]:
        return {**super().get_form_kwargs(index), "segment": self.instance, "options": self.options}


# --- KPIs ---------------------------------------------------------------------------------


COMPARATOR_CHOICES = [
    ("", _("no target (a figure reported without a target)")),
    (Comparator.GTE.value, _("at least (≥)")),
    (Comparator.GT.value, _("more than (>)")),
    (Comparator.LTE.value, _("at most (≤)")),
    (Comparator.LT.value, _("less than (<)")),
]

# The confidence level is typed in percent and stored as a fraction (0.950).
CONFIDENCE_LOW, CONFIDENCE_HIGH = Decimal("50"), Decimal("99.9")
HUNDRED = Decimal(100)


class ThresholdInput(forms.NumberInput):
    """The target's box. After a share's target under 1 it also offers "yes, I mean
    0.7 %" (the form's ``threshold_confirmed``), so that such a target is kept only on
    purpose."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.confirm: tuple[str, bool] | None = None  # the value as typed, ticked

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        html = super().render(name, value, attrs, renderer)
        if self.confirm is None:
            return html
        typed, ticked = self.confirm
        return format_html(
            '{}<span class="hyoka-confirm"><input type="checkbox" name="{}" id="{}" value="on"{}>'
            '<label for="{}">{}</label></span>',
            html,
            CONFIRM_FIELD,
            f"id_{CONFIRM_FIELD}",
            mark_safe(" checked") if ticked else "",
            f"id_{CONFIRM_FIELD}",
            _("Yes, I mean %(value)s %% (less than 1 %%).") % {"value": typed},
        )


CONFIRM_FIELD = "threshold_confirmed"


class KPIForm(KPIRulesMixin, forms.ModelForm):
    """A KPI's definition as a programme manager states it: success ticked as choices of
    a question (or a saved segment), targets and the confidence level in percent."""

    #: Set by the admin when the "Preview" button sent the form: a valid form is then
    #: shown again with the KPI's figures, and nothing is saved (``is_valid``).
    previewing = False

    success_question = forms.ModelChoiceField(
        label=capfirst(_("question")),
        queryset=Question.objects.none(),
        required=False,
        help_text=_("The question whose answers decide success, e.g. “Did you feel reassured?”."),
    )
    success_choices = forms.ModelMultipleChoiceField(
        label=capfirst(_("answers that count as success")),
        queryset=Choice.objects.none(),
        required=False,
        widget=GroupedCheckboxes,
        help_text=_(
            "Tick every answer that counts, e.g. “agree” and “somewhat agree”. A respondent "
            "who chose any of them counts as a success."
        ),
    )
    comparator = forms.ChoiceField(
        label=capfirst(_("target comparator")),
        choices=COMPARATOR_CHOICES,
        required=False,
        help_text=_("Leave empty for a figure that is reported without a target."),
    )
    confidence = forms.DecimalField(
        label=capfirst(_("confidence level (%)")),
        initial=Decimal("95"),
        help_text=_(
            "How sure the result must be, in percent: 95 means 95 %. Each result is shown "
            "with a range that the true value lies in with this certainty (the confidence "
            "interval). When the KPI is judged on the range's bound, the target counts as "
            "met only if the whole range meets it. Usually 95."
        ),
    )
    threshold_confirmed = forms.BooleanField(required=False)  # rendered by ThresholdInput

    class Meta:
        model = KPI
        fields = KPI_FIELDS
        widgets = {"threshold": ThresholdInput}
        labels = {
            # "% f" reads as a format to xgettext; this label is never %-formatted.
            # xgettext:no-python-format
            "threshold": capfirst(_("target (in % for a share)")),
            "numerator": capfirst(_("or a saved segment")),
        }
        help_texts = {
            "threshold": _(
                "For a share, type the percentage: 70 means 70 %. For a ratio or a mean, "
                "type the number itself (3.0; 3.2 on the four-point scale)."
            ),
            "numerator": _(
                "Instead of ticking answers above: a saved segment (a named group of "
                "respondents, which can combine several questions). Leave both empty for "
                "the response rate (base: all invited)."
            ),
            "base": _(
                "Who the share is taken of: the people counted under the line. Usually all "
                "respondents."
            ),
            "min_n": _(
                "The smallest number of people in the base for a verdict. With fewer, the "
                "result is shown but judged “inconclusive”: too few answers to say."
            ),
            "rule": _(
                "The point estimate is the value itself (e.g. 72 %). The interval's bound is "
                "the cautious end of its confidence range: the target is met only if the "
                "value stays on target allowing for chance."
            ),
            "base_description_ja": _(
                "Printed next to every figure: who the base is, in words (e.g. all respondents)."
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.success: SuccessChoices | None = None
        self.preview_ready = False
        self._numerator_before = self.instance.numerator_id
        study_id = self.instance.study_id or self._initial_study_id()
        with_study = study_id is None
        for name in ("numerator", "base_segment"):
            if name in self.fields:
                field = cast(forms.ModelChoiceField, self.fields[name])
                field.queryset = selectors.segments_for(study_id)
                field.label_from_instance = partial(segment_label, with_study=with_study)  # type: ignore[method-assign]
        if "mean_question" in self.fields:
            field = cast(forms.ModelChoiceField, self.fields["mean_question"])
            questions = selectors.scale_questions(study_id)
            if self.instance.mean_question_id:
                # Kept on offer if it belongs to an older version of the questionnaire.
                questions = questions | Question.objects.filter(pk=self.instance.mean_question_id)
            field.queryset = questions
            field.label_from_instance = partial(question_label, with_study=with_study)  # type: ignore[method-assign]
        if "success_question" in self.fields:
            self._offer_success(study_id)
        # 70 and 95 as typed, not the stored 70.0000 and 0.950.
        threshold = self.initial.get("threshold")
        if isinstance(threshold, Decimal):
            self.initial["threshold"] = plain_decimal(threshold)
        confidence = self.initial.get("confidence")
        if isinstance(confidence, Decimal) and confidence < 1:
            self.initial["confidence"] = plain_decimal(confidence * HUNDRED)

    def _initial_study_id(self) -> int | None:
        if self.is_bound:
            return None  # any study can be chosen; the rules check the segments match it
        value = self.initial.get("study")
        value = getattr(value, "pk", value)
        return as_id(value)

    def _offer_success(self, study_id: int | None) -> None:
        """The study's choice questions and their choices; a KPI whose success segment is
        one question's choices shows them ticked here instead of the segment."""
        options = ClauseOptions.for_study(study_id)
        question = cast(forms.ModelChoiceField, self.fields["success_question"])
        question.queryset = options.questions
        question.choices = options.question_options
        choices = cast(forms.ModelMultipleChoiceField, self.fields["success_choices"])
        choices.queryset = options.choices
        choices.choices = options.choice_groups
        widget = choices.widget
        assert isinstance(widget, GroupedCheckboxes)
        if not self.is_bound and self.instance.numerator_id:
            ticked = _as_ticked_choices(self.instance.numerator, options)
            if ticked is not None:
                self.initial["success_question"], self.initial["success_choices"] = ticked
                self.initial["numerator"] = None
        chosen = as_id(self["success_question"].value())
        if chosen in options.group_of_question:
            widget.open_groups = {options.group_of_question[chosen]}

    # --- cleaning

    def clean_confidence(self) -> Decimal:
        value = self.cleaned_data["confidence"]
        if 0 < value < 1:
            raise ValidationError(
                _("Did you mean %(suggestion)s %%? The confidence level is typed in percent.")
                % {"suggestion": plain_decimal(value * HUNDRED)}
            )
        if not CONFIDENCE_LOW <= value <= CONFIDENCE_HIGH:
            raise ValidationError(
                _("Type a confidence level between %(low)s and %(high)s %% (usually 95).")
                % {"low": CONFIDENCE_LOW, "high": CONFIDENCE_HIGH}
            )
        if value != value.quantize(Decimal("0.1")):
            raise ValidationError(_("Type the confidence level with one decimal at most (97.5)."))
        return (value / HUNDRED).quantize(Decimal("0.001"))

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        self._clean_success(cleaned)
        self._ask_about_small_share_target(cleaned)
        return cleaned

    def _study(self, cleaned: dict[str, Any]) -> Any:
        return self.instance.study if self.instance.study_id else cleaned.get("study")

    def _clean_success(self, cleaned: dict[str, Any]) -> None:
        if self.has_error("success_question") or self.has_error("success_choices"):
            return
        question = cleaned.get("success_question")
        choices = list(cleaned.get("success_choices") or [])
        if question is None and not choices:
            return  # a saved segment, or none (the response rate)
        if question is None:
            self.add_error("success_question", _("Pick the question whose answers you ticked."))
            return
        if not choices:
            self.add_error("success_choices", _("Tick the answers that count as success."))
            return
        if cleaned.get("numerator") is not None:
            self.add_error(
                "numerator",
                _("Tick answers above or pick a saved segment, not both: clear one of them."),
            )
        if cleaned.get("kind") == KPI.Kind.MEAN:
            self.add_error(
                "success_question",
                _("A mean averages a scale item's scores: pick it under “scale item” instead."),
            )
            return
        study = self._study(cleaned)
        if study is None:
            return  # the study's own error says so
        try:
            validate_clause(
                segment=Segment(study=study), question=question, choices=choices, tag=""
            )
        except ValidationError as exc:
            where = {"question": "success_question", "choices": "success_choices"}
            for name, messages in exc.message_dict.items():
                self.add_error(where.get(name, "success_choices"), messages)
            return
        self.success = SuccessChoices(question=question, choices=choices)

    def _ask_about_small_share_target(self, cleaned: dict[str, Any]) -> None:
        """A share's target of 0.7 is almost always 70 % typed as a fraction: asked, and
        kept only when the box says so."""
        threshold = cleaned.get("threshold")
        if cleaned.get("kind") != KPI.Kind.SHARE or threshold is None or not 0 < threshold < 1:
            return
        typed = plain_decimal(threshold) or ""
        confirmed = bool(cleaned.get(CONFIRM_FIELD))
        widget = self.fields["threshold"].widget
        assert isinstance(widget, ThresholdInput)
        widget.confirm = (typed, confirmed)
        if not confirmed:
            self.add_error(
                "threshold",
                _(
                    "Did you mean %(suggestion)s %%? A share's target is typed in percent: "
                    "%(value)s means %(value)s %%, less than one in a hundred. Type "
                    "%(suggestion)s, or tick the box to keep %(value)s %%."
                )
                % {"suggestion": plain_decimal(threshold * HUNDRED), "value": typed},
            )

    def before_rules(self) -> None:
        """Ticked answers stand for their segment: the study's equivalent one, or (not
        saved yet) a new one, which the rules accept as the success segment."""
        if self.success is None:
            return
        study = self.instance.study
        self.instance.numerator = selectors.equivalent_segment(
            study.pk, self.success.clauses, prefer=self._numerator_before
        ) or Segment(study=study)

    def is_valid(self) -> bool:
        valid = super().is_valid()
        # A preview saves nothing: a valid form answers "not valid", with no error, so
        # that the admin shows it again, with the figures (KPIAdmin.render_change_form).
        self.preview_ready = valid and self.previewing
        return valid and not self.previewing


def _as_ticked_choices(
    segment: Segment | None, options: ClauseOptions
) -> tuple[int, list[int]] | None:
    """A segment that is "chose any of these choices of one question", as that question
    and those choices of the offered questionnaire (matched by codes); else None."""
    if segment is None:
        return None
    clauses = list(segment.clauses.all())
    if len(clauses) != 1:
        return None
    clause = clauses[0]
    codes = {c.code for c in clause.choices.all()}
    if clause.negate or clause.tag or not codes:
        return None
    question = next((q for q in options.questions if q.code == clause.question.code), None)
    if question is None:
        return None
    ticked = [c.pk for c in options.choices if c.question_id == question.pk and c.code in codes]
    return (question.pk, ticked) if len(ticked) == len(codes) else None


class KPIListForm(KPIRulesMixin, forms.ModelForm):
    """The list's editable column (display order)."""

    class Meta:
        model = KPI
        fields = ("order",)
