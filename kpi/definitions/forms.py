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
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator, capfirst
from django.utils.translation import gettext_lazy as _

from kpi.scoring.statistics import Comparator
from surveys.ids import as_id
from surveys.models import Choice, Question

from . import selectors
from .models import KPI, Clause, Segment
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
        try:
            validate_kpi(self.instance)
        except ValidationError as exc:
            self._update_errors(exc)  # type: ignore[attr-defined]


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
    ("", _("no target (a descriptive figure)")),
    (Comparator.GTE.value, _("at least (≥)")),
    (Comparator.GT.value, _("more than (>)")),
    (Comparator.LTE.value, _("at most (≤)")),
    (Comparator.LT.value, _("less than (<)")),
]


class KPIForm(KPIRulesMixin, forms.ModelForm):
    comparator = forms.ChoiceField(
        label=capfirst(_("target comparator")),
        choices=COMPARATOR_CHOICES,
        required=False,
        help_text=_("Leave empty for a figure that is reported without a target."),
    )

    class Meta:
        model = KPI
        fields = (
            "study",
            "code",
            "order",
            "group",
            "name_ja",
            "name_en",
            "base_description_ja",
            "base_description_en",
            "kind",
            "numerator",
            "base",
            "base_segment",
            "mean_question",
            "comparator",
            "threshold",
            "rule",
            "confidence",
            "min_n",
            "by_site",
            "active",
        )
        labels = {
            # "% f" reads as a format to xgettext; this label is never %-formatted.
            # xgettext:no-python-format
            "threshold": capfirst(_("target (in % for a share)")),
            "confidence": capfirst(_("confidence level (0.95 = 95 %)")),
        }
        help_texts = {
            "threshold": _(
                "For a share, type the percentage: 70 means 70 %. For a ratio or a mean, "
                "type the number itself (3.0; 3.2 on the four-point scale)."
            ),
            "confidence": _(
                "A decimal: 0.95 means 95 %. It sets the width of the interval, and the "
                "bound that is judged when the KPI is judged on the interval's bound."
            ),
            "base_description_ja": _(
                "Printed next to every figure: who the base is, in words (e.g. all respondents)."
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
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
        # 70 and 0.95 as typed, not the stored 70.0000 and 0.950.
        for name in ("threshold", "confidence"):
            value = self.initial.get(
                name, self.fields[name].initial if name in self.fields else None
            )
            if isinstance(value, Decimal):
                self.initial[name] = plain_decimal(value)

    def _initial_study_id(self) -> int | None:
        if self.is_bound:
            return None  # any study can be chosen; the rules check the segments match it
        value = self.initial.get("study")
        value = getattr(value, "pk", value)
        return as_id(value)


class KPIListForm(KPIRulesMixin, forms.ModelForm):
    """The list's editable column (display order)."""

    class Meta:
        model = KPI
        fields = ("order",)
