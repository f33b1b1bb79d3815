"""The questions a cross-tab asks, checked once for the admin page and the API.

Everything offered comes from the study itself: its closed questions (by code, in every
version) and its segments. A question of another study, a free-text question or an
unknown code is "not one of the choices", in the user's language; nothing else is read.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from kpi.definitions.models import Segment
from surveys.answers import InstrumentForm
from surveys.models import Study

from .crosstab import By, closed_questions

# The confidence level in percent, as everywhere a manager types one (issue 15).
CONFIDENCE_MIN, CONFIDENCE_MAX = Decimal(50), Decimal("99.9")


class CrosstabForm(forms.Form):
    question = forms.ChoiceField(label=gettext_lazy("Question"))
    by = forms.ChoiceField(
        label=gettext_lazy("Break down by"), choices=By.choices, initial=By.NONE, required=False
    )
    segment = forms.ModelChoiceField(
        label=gettext_lazy("Segment"), queryset=Segment.objects.none(), required=False
    )
    by_question = forms.ChoiceField(
        label=gettext_lazy("By question"), required=False, choices=[("", "---------")]
    )
    confidence = forms.DecimalField(
        label=gettext_lazy("Confidence level (%)"),
        initial=Decimal(95),
        min_value=CONFIDENCE_MIN,
        max_value=CONFIDENCE_MAX,
        max_digits=3,
        decimal_places=1,
        required=False,
        help_text=gettext_lazy("For the intervals: 95 means 95 %."),
    )

    def __init__(self, *args: Any, study: Study, forms_: dict[int, InstrumentForm], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.study = study
        self.forms_ = forms_
        self.questions = closed_questions(forms_)
        options = [(q.code, f"{q.code} — {q.text}") for q in self.questions.values()]
        self.fields["question"].choices = options  # type: ignore[attr-defined]
        self.fields["by_question"].choices = [("", "---------"), *options]  # type: ignore[attr-defined]
        self.fields["segment"].queryset = Segment.objects.filter(study=study).order_by("code")  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        by = data.get("by") or By.NONE
        data["by"] = By(by)
        if data.get("confidence") is None and "confidence" not in self.errors:
            data["confidence"] = Decimal(95)
        if by == By.SEGMENT and not data.get("segment") and "segment" not in self.errors:
            self.add_error("segment", _("Choose the segment to break down by."))
        if by == By.QUESTION and "by_question" not in self.errors:
            other = data.get("by_question")
            if not other:
                self.add_error("by_question", _("Choose the question to break down by."))
            elif other == data.get("question"):
                self.add_error("by_question", _("Choose a question other than the one counted."))
        return data

    @property
    def confidence_level(self) -> Decimal:
        """The level as a fraction (0.95), as the statistics take it."""
        return Decimal(self.cleaned_data["confidence"]) / 100
