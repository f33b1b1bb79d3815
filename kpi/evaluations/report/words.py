"""KPI definitions in words, from the snapshot: bases, segments and their clauses.

A clause names a question and choices (or a tag) by code; the report spells them out with
the question texts and choice labels of the instrument frozen in the snapshot, in the
report's language, so a reader sees exactly which answers were counted.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import get_language, pgettext
from django.utils.translation import gettext as _

from .text import join, quoted

Data = dict[str, Any]


def pick(data: Data, field: str) -> str:
    """``field_<language>`` of a snapshot entry, Japanese as the fallback."""
    lang = (get_language() or "ja")[:2]
    return str(data.get(f"{field}_{lang}") or data.get(f"{field}_ja") or "")


class Instrument:
    """The snapshot's instrument, looked up by question and choice code."""

    def __init__(self, data: Data | None) -> None:
        self.data = data or {"questions": []}
        self.questions: dict[str, Data] = {q["code"]: q for q in self.data["questions"]}
        self.numbers = {q["code"]: n for n, q in enumerate(self.data["questions"], start=1)}

    def ref(self, code: str) -> str:
        """How the report's body cites a question: "Q1", its number in the appendix (the
        code is for the auditors' appendix only, see ``coded_ref``)."""
        if code not in self.numbers:
            return _("question %(code)s") % {"code": code}
        return f"Q{self.numbers[code]}"

    def coded_ref(self, code: str) -> str:
        """How the auditors' appendix cites a question: "Q1 (channels)"."""
        if code not in self.numbers:
            return code
        return f"Q{self.numbers[code]} ({code})"

    def question_text(self, code: str) -> str:
        question = self.questions.get(code)
        return pick(question, "text") if question else ""

    def question(self, code: str) -> str:
        return self.ref(code)

    def choices(self, question: str) -> list[Data]:
        q = self.questions.get(question)
        return list(q["choices"]) if q else []

    def label(self, question: str, code: str) -> str:
        for choice in self.choices(question):
            if choice["code"] == code:
                return pick(choice, "label") or code
        return code

    def tagged(self, question: str, tag: str) -> list[Data]:
        return [c for c in self.choices(question) if tag in c.get("tags", [])]

    def labels(self, question: str, codes: list[str]) -> list[str]:
        """Labels of ``codes`` in the instrument's order (unknown codes last, as codes)."""
        order = [c["code"] for c in self.choices(question)]
        known = [c for c in order if c in codes]
        return [self.label(question, c) for c in known] + [c for c in codes if c not in order]


def clause(instrument: Instrument, data: Data) -> str:
    """One condition in words. A tag is a program identifier, so the body of the report
    spells it out as the choices it stands for; the tag itself is printed only in the
    auditors' appendix (``tags``)."""
    question = instrument.question(data["question"])
    tag = data.get("tag") or ""
    codes = list(data.get("choices") or [])
    if tag:
        codes += [
            c["code"] for c in instrument.tagged(data["question"], tag) if c["code"] not in codes
        ]
    labels = join([quoted(label) for label in instrument.labels(data["question"], codes)])
    values = {"question": question, "choices": labels, "tag": quoted(tag)}
    negate = bool(data.get("negate"))
    if tag and not codes:  # a tag no choice carries: nothing to spell out but its name
        if negate:
            return _("chose no choice tagged %(tag)s in %(question)s") % values
        return _("chose a choice tagged %(tag)s in %(question)s") % values
    if negate:
        return _("chose none of %(choices)s in %(question)s") % values
    if len(codes) == 1 and not tag:
        return _("chose %(choices)s in %(question)s") % values
    return _("chose any of %(choices)s in %(question)s") % values


def tags(instrument: Instrument, definitions: list[Data]) -> list[Data]:
    """Every (question, tag) the definitions' clauses use, with the choices it stands for."""
    seen: list[tuple[str, str]] = []
    for definition in definitions:
        for key in ("numerator", "base_segment"):
            for c in (definition.get(key) or {}).get("clauses", []):
                if c.get("tag") and (c["question"], c["tag"]) not in seen:
                    seen.append((c["question"], c["tag"]))
    return [
        {
            "tag": tag,
            "question": instrument.coded_ref(question),
            "choices": [pick(c, "label") for c in instrument.tagged(question, tag)],
        }
        for question, tag in seen
    ]


def segment(instrument: Instrument, data: Data | None) -> str:
    if not data:
        return ""
    clauses = [clause(instrument, c) for c in data["clauses"]]
    conditions = pgettext("joining the conditions of a segment", " and ").join(clauses)
    return _("respondents who %(conditions)s") % {"conditions": conditions}


def base(instrument: Instrument, definition: Data) -> str:
    kind = definition["base"]
    if definition["kind"] == "ratio":
        return _("all respondents; the groups may overlap")
    if kind == "invited":
        return _(
            "every invited participant: the active ones, and those who withdrew after answering"
        )
    if kind == "respondents":
        return _("every respondent (questionnaires submitted by the data cut-off)")
    return segment(instrument, definition["base_segment"])


def numerator(instrument: Instrument, definition: Data) -> str:
    kind = definition["kind"]
    if kind == "mean":
        code = definition["mean_question"]
        scores = join(
            [
                f"{quoted(pick(c, 'label'))} = {c['score']}"
                for c in instrument.choices(code)
                if c.get("score") is not None
            ]
        )
        return _("the mean score of %(question)s (%(scores)s)") % {
            "question": instrument.question(code),
            "scores": scores,
        }
    if kind == "ratio":
        return _("%(numerator)s, divided by %(denominator)s") % {
            "numerator": segment(instrument, definition["numerator"]),
            "denominator": segment(instrument, definition["base_segment"]),
        }
    if definition["numerator"] is None:
        return _("those who submitted the questionnaire by the data cut-off")
    return segment(instrument, definition["numerator"])


def questions(definition: Data) -> list[str]:
    """The codes of the questions a definition's clauses cite, in order of first mention."""
    codes: list[str] = []
    for key in ("numerator", "base_segment"):
        for c in (definition.get(key) or {}).get("clauses", []):
            if c["question"] not in codes:
                codes.append(c["question"])
    if definition.get("mean_question") and definition["mean_question"] not in codes:
        codes.append(definition["mean_question"])
    return codes


def counting(instrument: Instrument, definition: Data) -> str:
    """What counts as success, in the seed table's words where the definition allows:
    "the share choosing “Agree” or “Somewhat agree” of “Agree” / … / “Disagree”"."""
    seg = definition.get("numerator")
    if definition["kind"] != "share" or not seg:
        return numerator(instrument, definition)
    clauses = seg["clauses"]
    if len(clauses) == 1 and clauses[0]["choices"] and not clauses[0]["negate"]:
        question = clauses[0]["question"]
        every = [pick(c, "label") for c in instrument.choices(question)]
        chosen = instrument.labels(question, list(clauses[0]["choices"]))
        if every:
            return _("the share choosing %(chosen)s (choices: %(all)s)") % {
                "chosen": join([quoted(c) for c in chosen]),
                "all": " / ".join(every),
            }
    return numerator(instrument, definition)


# --- the auditors' appendix: definitions as registered, by code ---------------------------


def coded_segment(data: Data | None) -> str:
    """A segment in the registration's codes: "online_only: channels ∈ #online ∧ channels ∉
    #municipal" (a choice by its code, a tag with "#")."""
    if not data:
        return ""
    clauses = []
    for c in data["clauses"]:
        items = [*c.get("choices", []), *([f"#{c['tag']}"] if c.get("tag") else [])]
        op = "∉" if c.get("negate") else "∈"
        clauses.append(f"{c['question']} {op} {' | '.join(items)}")
    return f"{data['code']}: {' ∧ '.join(clauses)}"


def coded_numerator(definition: Data) -> str:
    if definition["kind"] == "mean":
        return f"mean({definition['mean_question']})"
    if definition["numerator"] is None:
        return "respondents"
    return coded_segment(definition["numerator"])


def coded_base(definition: Data) -> str:
    if definition["base"] == "segment" or definition["kind"] == "ratio":
        return coded_segment(definition["base_segment"])
    return str(definition["base"])


def registered(definition: Data) -> str:
    """The definition's registered parameters, as the registration names them."""
    keys = ("kind", "comparator", "threshold", "rule", "confidence", "min_n", "by_site")
    return " · ".join(
        f"{key}={definition[key]}" for key in keys if definition.get(key) not in (None, "")
    )
