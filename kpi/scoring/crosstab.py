"""Frequencies and cross-tabs of a closed question: counts, shares of respondents and
their Wilson intervals, overall or broken down by site, by a segment or by another closed
question.

The counts come from one scan of the responses' choice bits (``counting.count_crosstab``);
the intervals from ``statistics.wilson_interval``; this module only decides the columns
and puts the two together. The admin page, its CSV and XLSX files and the API all read the
``Table`` made here, and word it with the functions at the end.

A question is named by its code, which every version of the questionnaire shares: a
response is counted by the bits of the version it answered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from kpi.definitions.frozen import ClauseDef, segment_def
from kpi.definitions.models import Segment
from surveys.answers import InstrumentForm
from surveys.models import Question, Site, Study

from . import disclosure, wording
from . import statistics as st
from .counting import ALL, Group, GroupCounts, conjunction, count_crosstab


class By(models.TextChoices):
    NONE = "none", gettext_lazy("No breakdown")
    SITE = "site", gettext_lazy("Site")
    SEGMENT = "segment", gettext_lazy("Segment")
    QUESTION = "question", gettext_lazy("Another question")


@dataclass(frozen=True)
class Item:
    code: str
    label: str


@dataclass(frozen=True)
class ClosedQuestion:
    """A closed question as the study's versions have it: the newest version's wording,
    and the choices of every version (the newest's order, then older ones' extras)."""

    code: str
    text: str
    type: str
    conditional: bool
    choices: list[Item]

    @property
    def multiple(self) -> bool:
        return self.type == Question.Type.MULTIPLE


def closed_questions(forms: dict[int, InstrumentForm]) -> dict[str, ClosedQuestion]:
    """The closed questions of ``forms`` (newest version first), in questionnaire order."""
    found: dict[str, ClosedQuestion] = {}
    for form in forms.values():
        for q in form.questions:
            if not q.has_choices:
                continue
            items = [Item(c.code, c.label) for c in form.choices[q.code].values()]
            if q.code not in found:
                found[q.code] = ClosedQuestion(
                    q.code, q.text, q.type, bool(q.condition_question_id), items
                )
            else:
                known = {i.code for i in found[q.code].choices}
                found[q.code].choices.extend(i for i in items if i.code not in known)
    return found


@dataclass(frozen=True)
class Cell:
    """A choice in a column: ``n`` of the ``base`` who answered chose it."""

    n: int
    base: int
    share: Fraction | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    counts: GroupCounts
    total: bool = False


@dataclass(frozen=True)
class Row:
    item: Item
    cells: list[Cell]


@dataclass(frozen=True)
class Shown:
    """A count as published: its number, or None and the mark that stands for it."""

    n: int | None
    mark: str = ""

    @property
    def text(self) -> str:
        return self.mark or str(self.n)


@dataclass(frozen=True)
class Table:
    study: Study
    question: ClosedQuestion
    by: By
    by_label: str  # what the columns are: "Site", a segment's name, a question's text
    scope: str  # whose responses: the whole study, or the caller's sites by name
    confidence: Decimal  # 0.95
    cutoff: dt.datetime
    columns: list[Column]
    rows: list[Row]
    #: The small-cell protection of the table (``disclosure``): the total column exact when
    #: it is the whole study's.
    protection: disclosure.Protection = disclosure.NO_PROTECTION

    @property
    def total(self) -> Column:
        return self.columns[-1]

    def _shown(self, key: tuple[str, ...], n: int) -> Shown:
        p = self.protection
        return Shown(None, p.mark(key)) if p.hidden(key) else Shown(n)

    def chosen(self, code: str, column: Column) -> Shown:
        return self._shown(("chosen", code, column.key), column.counts.chosen.get(code, 0))

    def figure(self, name: str, column: Column) -> Shown:
        """A column's ``answered`` (the base), ``unanswered`` (shown, not answered),
        ``not_shown``, ``shown`` or ``respondents``."""
        c = column.counts
        n = {
            "answered": c.answered,
            "unanswered": c.shown - c.answered,
            "not_shown": c.respondents - c.shown,
            "shown": c.shown,
            "respondents": c.respondents,
        }[name]
        return self._shown((name, column.key), n)

    def share_hidden(self, code: str, column: Column) -> bool:
        """A share (and its interval) gives its count back with its base: withheld with
        either."""
        return self.chosen(code, column).n is None or self.figure("answered", column).n is None

    @property
    def legend(self) -> str:
        p = self.protection
        if not p.any:
            return ""
        return disclosure.legend_text(p.k, blanked=bool(p.blanked))

    @property
    def confidence_percent(self) -> Decimal:
        return self.confidence * 100

    def describe(self) -> str:
        return caption(self)


def crosstab(
    *,
    study: Study,
    sites: Sequence[Site],
    whole: bool,
    forms: dict[int, InstrumentForm],
    question: str,
    by: By = By.NONE,
    segment: Segment | None = None,
    by_question: str = "",
    confidence: Decimal = Decimal("0.95"),
    cutoff: dt.datetime | None = None,
) -> Table:
    """The table of ``question`` over the submitted responses of ``sites`` (the caller's
    sites of ``study``; ``whole`` when they are all of them). The last column is always
    the total over ``sites``. Parameters are checked by ``forms.CrosstabForm``."""
    cutoff = cutoff or timezone.now()
    questions = closed_questions(forms)
    row_q = questions[question]
    codes = [i.code for i in row_q.choices]
    total_label = _("Whole study") if whole else _("Your sites")
    groups: list[Group] = []
    heads: list[tuple[str, str]] = []
    by_label = ""
    if by == By.SEGMENT:
        assert segment is not None
        clauses = conjunction(segment_def(segment).clauses)
        groups = [Group(clauses), Group(clauses, outside=True)]
        heads = [
            ("in", segment.name),
            ("out", _("Not in “%(segment)s”") % {"segment": segment.name}),
        ]
        by_label = segment.name
    elif by == By.QUESTION:
        col_q = questions[by_question]
        all_codes = tuple(sorted(i.code for i in col_q.choices))
        groups = [Group((ClauseDef(col_q.code, (i.code,), "", False),)) for i in col_q.choices]
        groups.append(Group((ClauseDef(col_q.code, all_codes, "", True),)))
        heads = [(i.code, i.label) for i in col_q.choices] + [("_none", _("No answer"))]
        by_label = col_q.text
    elif by == By.SITE:
        by_label = _("Site")
    counts = count_crosstab(
        forms=forms,
        site_ids=[s.pk for s in sites],
        cutoff=cutoff,
        question=question,
        choices=codes,
        groups=[*groups, Group(ALL)],
    )
    columns: list[Column] = []
    if by == By.SITE:
        columns = [Column(s.code, s.name, counts[s.pk][-1]) for s in sites]
    else:
        columns = [
            Column(key, label, _sum(codes, (c[g] for c in counts.values())))
            for g, (key, label) in enumerate(heads)
        ]
    columns.append(
        Column("_total", total_label, _sum(codes, (c[-1] for c in counts.values())), True)
    )
    level = float(confidence)
    rows = [
        Row(
            item,
            [_cell(col.counts.chosen[item.code], col.counts.answered, level) for col in columns],
        )
        for item in row_q.choices
    ]
    scope = total_label if whole else ", ".join(s.name for s in sites)
    by_site = [_cross(Column(s.code, s.name, counts[s.pk][-1]), s.code) for s in sites]
    protection = (
        disclosure.Protection(k=study.small_cell_threshold)
        if by == By.NONE and whole  # the whole study's figures only: always published
        else disclosure.protect_crosstab(
            by_site,
            _cross(columns[-1], None),
            study.small_cell_threshold,
            conditional=row_q.conditional,
            single=not row_q.multiple,
            breakdown=[] if by in (By.SITE, By.NONE) else [_cross(c, None) for c in columns[:-1]],
            partition=by == By.SEGMENT
            or (by == By.QUESTION and not questions[by_question].multiple),
            total_fixed=whole,
        )
    )
    return Table(study, row_q, by, by_label, scope, confidence, cutoff, columns, rows, protection)


def _cross(column: Column, owner: str | None) -> disclosure.CrossColumn:
    c = column.counts
    return disclosure.CrossColumn(
        column.key,
        owner,
        c.answered,
        c.shown - c.answered,
        c.respondents - c.shown,
        dict(c.chosen),
    )


def _sum(codes: list[str], counts: Iterable[GroupCounts]) -> GroupCounts:
    parts = list(counts)
    chosen = dict.fromkeys(codes, 0)
    for part in parts:
        for code, n in part.chosen.items():
            chosen[code] = chosen.get(code, 0) + n
    return GroupCounts(
        respondents=sum(p.respondents for p in parts),
        shown=sum(p.shown for p in parts),
        answered=sum(p.answered for p in parts),
        chosen=chosen,
    )


def _cell(n: int, base: int, confidence: float) -> Cell:
    if base == 0:
        return Cell(n, base, None, None, None)
    low, high = st.wilson_interval(n, base, confidence)
    return Cell(n, base, Fraction(n, base), low, high)


# --- In words: the page, the files and the API say the same ----------------------------------


def share_text(cell: Cell) -> str:
    return wording.DASH if cell.share is None else wording.pct(cell.share, 1)


def interval_text(cell: Cell) -> str:
    if cell.low is None or cell.high is None:
        return wording.DASH
    return (
        f"{wording.pct_number(cell.low, 1)}{wording.DASH}"
        f"{wording.pct_number(cell.high, 1)}{wording.NBSP}%"
    )


def percent_value(value: Fraction | float | None) -> Decimal | None:
    """A share or bound as a number of percent to one decimal (for files and the API)."""
    return None if value is None else st.round_half_up(Fraction(value) * 100, 1)


def level_text(table: Table) -> str:
    return st.confidence_percent(table.confidence)


def caption(table: Table) -> str:
    """What the table counts, and over whom: its base, said in full."""
    q = table.question
    words = [
        _(
            "%(question)s: submitted responses of %(scope)s up to %(cutoff)s. Base: the "
            "respondents who answered the question (n = %(n)s of %(respondents)s)."
        )
        % {
            "question": q.text,
            "scope": table.scope,
            "cutoff": timezone.localtime(table.cutoff).strftime("%Y-%m-%d %H:%M"),
            "n": wording.integer(table.total.counts.answered),
            "respondents": wording.integer(table.total.counts.respondents),
        },
        _("Shares of respondents with %(level)s %% Wilson intervals.")
        % {"level": level_text(table)},
    ]
    if q.multiple:
        words.append(
            _(
                "Several answers were allowed: a respondent is counted in every row they "
                "chose, so a column can add up to more than 100 %%."
            )
            % {}
        )
    if q.conditional:
        words.append(_("The question is shown only to some respondents (a condition)."))
    return " ".join(words)
