"""Count every segment a run needs, per site, with one aggregate query over responses.

Each submitted response carries its chosen choices as bits (``Response.choice_bits``), so
"chose any choice tagged online in channels" is a bit test on the response's own row. All
segments, their intersections and the sums for means are columns of a single
``GROUP BY site`` query: the number of queries does not grow with the responses, and no
Python code loops over responses or answers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Count

from kpi.definitions.frozen import ClauseDef, KPIDef
from surveys.answers import InstrumentForm
from surveys.models import Instrument, Participant, Response

Conjunction = tuple[ClauseDef, ...]  # sorted, duplicate-free; () means every respondent
ALL: Conjunction = ()


def conjunction(*parts: Iterable[ClauseDef]) -> Conjunction:
    return tuple(sorted({c for part in parts for c in part}, key=repr))


@dataclass
class CountPlan:
    """The columns a set of KPIs needs: segment counts and, for means, score sums."""

    counts: dict[Conjunction, str] = field(default_factory=dict)
    means: dict[tuple[str, Conjunction], str] = field(default_factory=dict)

    def count(self, conj: Conjunction) -> str:
        return self.counts.setdefault(conj, f"c{len(self.counts)}")

    def mean(self, question: str, base: Conjunction) -> str:
        return self.means.setdefault((question, base), f"m{len(self.means)}")


def base_conjunction(kpi: KPIDef) -> Conjunction:
    return conjunction(kpi.base_segment.clauses) if kpi.base_segment else ALL


def plan_for(kpis: Iterable[KPIDef]) -> CountPlan:
    plan = CountPlan()
    for kpi in kpis:
        numerator = conjunction(kpi.numerator.clauses) if kpi.numerator else ALL
        base = base_conjunction(kpi)
        if kpi.kind == "share":
            plan.count(conjunction(numerator, base))
            plan.count(base)
        elif kpi.kind == "ratio":
            plan.count(numerator)
            plan.count(base)
            plan.count(conjunction(numerator, base))
        elif kpi.kind == "mean":
            plan.count(base)
            plan.mean(kpi.mean_question, base)
    return plan


@dataclass(frozen=True)
class SiteCounts:
    invited: int
    respondents: int
    columns: dict[str, int]


def _clause_mask(form: InstrumentForm, clause: ClauseDef) -> int:
    question = form.by_code.get(clause.question)
    if question is None:
        return 0
    mask = 0
    for choice in form.choices[question.code].values():
        if choice.code in clause.choices or (clause.tag and clause.tag in choice.tags):
            mask |= 1 << form.bit_of[choice.pk]
    return mask


def _per_instrument(forms: dict[int, InstrumentForm], test: dict[int, str], default: str) -> str:
    """``test`` per instrument id as one SQL expression (plain when there is one version)."""
    if len(forms) == 1:
        return test[next(iter(forms))]
    arms = " ".join(f"WHEN instrument_id = {int(i)} THEN {test[i]}" for i in forms)
    return f"(CASE {arms} ELSE {default} END)"


def _condition(forms: dict[int, InstrumentForm], conj: Conjunction) -> str:
    if not conj:
        return "1 = 1"
    parts = []
    for clause in conj:
        masks = {i: _clause_mask(f, clause) for i, f in forms.items()}
        # SQLite and PostgreSQL both read "x <> 0" as a boolean; the masks are our own ints.
        tests = {
            i: f"((choice_bits & {int(m)}) <> 0)" if m else "(1 = 0)" for i, m in masks.items()
        }
        expr = _per_instrument(forms, tests, "(1 = 0)")
        parts.append(f"NOT {expr}" if clause.negate else expr)
    return " AND ".join(parts)


def _score(forms: dict[int, InstrumentForm], question_code: str) -> str:
    """The chosen choice's score of a scale item, NULL when it was not answered."""
    tests = {}
    for i, form in forms.items():
        question = form.by_code.get(question_code)
        arms = (
            " ".join(
                f"WHEN (choice_bits & {1 << form.bit_of[c.pk]}) <> 0 THEN {int(c.score)}"
                for c in form.choices[question.code].values()
                if c.score is not None
            )
            if question
            else ""
        )
        tests[i] = f"(CASE {arms} END)" if arms else "NULL"
    return _per_instrument(forms, tests, "NULL")


def _scan_sql(forms: dict[int, InstrumentForm], columns: list[str], *, sites: int = 0) -> str:
    """The one scan every count here makes: ``site_id``, the number of submitted responses
    and ``columns`` per site, over the responses to ``forms`` submitted up to a cut-off
    (parameters: the status, the cut-off, then ``sites`` site ids when given)."""
    ids = ", ".join(str(int(i)) for i in forms)
    only = f" AND site_id IN ({', '.join(['%s'] * sites)})" if sites else ""
    # Built from our own integers (masks, scores, ids) and aliases; values are parameters.
    return (
        f"SELECT {', '.join(['site_id', 'COUNT(*)', *columns])} "  # noqa: S608
        f"FROM {Response._meta.db_table} "
        f"WHERE status = %s AND instrument_id IN ({ids}) AND submitted_at <= %s{only} "
        "GROUP BY site_id"
    )


def count_sql(forms: dict[int, InstrumentForm], plan: CountPlan) -> str:
    columns = []
    for conj, alias in plan.counts.items():
        columns.append(f"SUM(CASE WHEN {_condition(forms, conj)} THEN 1 ELSE 0 END) AS {alias}")
    for (question, base), alias in plan.means.items():
        score, cond = _score(forms, question), _condition(forms, base)
        columns += [
            f"SUM(CASE WHEN {cond} THEN {score} END) AS {alias}_sum",
            f"SUM(CASE WHEN {cond} THEN {score} * {score} END) AS {alias}_sq",
            f"SUM(CASE WHEN {cond} AND {score} IS NOT NULL THEN 1 ELSE 0 END) AS {alias}_n",
        ]
    return _scan_sql(forms, columns)


def study_forms(study_id: int) -> dict[int, InstrumentForm]:
    """The forms of the study's published (and retired) instruments: those responses can
    have been submitted to, each with its own bit positions."""
    instruments = Instrument.objects.filter(study_id=study_id).exclude(
        status=Instrument.Status.DRAFT
    )
    return {i.pk: InstrumentForm.load(i) for i in instruments.order_by("-version")}


def count_study(
    *, study_id: int, site_ids: list[int], cutoff: dt.datetime, plan: CountPlan
) -> dict[int, SiteCounts]:
    """Counts per site for ``plan``, from the responses submitted up to ``cutoff``."""
    forms = study_forms(study_id)
    names = list(plan.counts.values()) + [
        f"{alias}_{part}" for alias in plan.means.values() for part in ("sum", "sq", "n")
    ]
    rows: dict[int, SiteCounts] = {}
    if forms:
        with connection.cursor() as cursor:
            cursor.execute(count_sql(forms, plan), [Response.Status.SUBMITTED, cutoff])
            for site_id, respondents, *values in cursor.fetchall():
                rows[site_id] = SiteCounts(
                    invited=0,
                    respondents=int(respondents),
                    columns={n: int(v or 0) for n, v in zip(names, values, strict=True)},
                )
    # Invited: active participants, plus withdrawn ones who had already responded (the
    # definition of surveys.selectors.INVITED). Two plain per-site counts: one query with
    # the OR made PostgreSQL misestimate and probe a million index entries (bench/score.py).
    invited: dict[int, int] = dict(
        Participant.objects.filter(
            site_id__in=site_ids, status=Participant.Status.ACTIVE, created_at__lte=cutoff
        )
        .values_list("site_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    withdrawn_respondents = (
        Participant.objects.filter(
            site_id__in=site_ids,
            status=Participant.Status.WITHDRAWN,
            response__status=Response.Status.SUBMITTED,
            response__submitted_at__lte=cutoff,
        )
        .values_list("site_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    for site_id, n in withdrawn_respondents:
        invited[site_id] = invited.get(site_id, 0) + n
    empty = dict.fromkeys(names, 0)
    return {
        site_id: SiteCounts(
            invited=invited.get(site_id, 0),
            respondents=rows[site_id].respondents if site_id in rows else 0,
            columns=rows[site_id].columns if site_id in rows else dict(empty),
        )
        for site_id in site_ids
    }


def total(counts: Iterable[SiteCounts]) -> SiteCounts:
    """Counts of the whole study: every count and sum adds up over sites."""
    counts = list(counts)
    names = counts[0].columns.keys() if counts else []
    return SiteCounts(
        invited=sum(c.invited for c in counts),
        respondents=sum(c.respondents for c in counts),
        columns={n: sum(c.columns[n] for c in counts) for n in names},
    )


def choice_distribution(
    *, study_id: int, cutoff: dt.datetime
) -> dict[str | None, dict[str, dict[str, int]]]:
    """How many submitted responses chose each choice, by site code and overall (``None``):
    ``{site: {question_code: {choice_code: n, "_answered": n}}}``. One query, on the bits."""
    instruments = Instrument.objects.filter(study_id=study_id).exclude(
        status=Instrument.Status.DRAFT
    )
    forms = {i.pk: InstrumentForm.load(i) for i in instruments}
    if not forms:
        return {None: {}}
    keys: list[tuple[str, str]] = []
    for form in forms.values():
        for q in form.questions:
            if q.has_choices:
                keys += [(q.code, c) for c in form.choices[q.code]]
                keys.append((q.code, "_answered"))
    keys = list(dict.fromkeys(keys))
    columns = []
    for question_code, choice in keys:
        tests = {}
        for i, form in forms.items():
            options = form.choices.get(question_code, {})
            mask = (
                sum(1 << form.bit_of[c.pk] for c in options.values())
                if choice == "_answered"
                else (1 << form.bit_of[options[choice].pk] if choice in options else 0)
            )
            tests[i] = f"((choice_bits & {int(mask)}) <> 0)" if mask else "(1 = 0)"
        condition = _per_instrument(forms, tests, "(1 = 0)")
        columns.append(f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)")
    ids = ", ".join(str(int(i)) for i in forms)
    sql = (
        f"SELECT s.code, {', '.join(columns)} FROM {Response._meta.db_table} "  # noqa: S608
        "JOIN surveys_site s ON s.id = site_id "
        f"WHERE status = %s AND instrument_id IN ({ids}) AND submitted_at <= %s GROUP BY s.code"
    )
    out: dict[str | None, dict[str, dict[str, int]]] = {None: {}}
    with connection.cursor() as cursor:
        cursor.execute(sql, [Response.Status.SUBMITTED, cutoff])
        for site_code, *values in cursor.fetchall():
            for (question_code, choice), value in zip(keys, values, strict=True):
                n = int(value or 0)
                out.setdefault(site_code, {}).setdefault(question_code, {})[choice] = n
                total_q = out[None].setdefault(question_code, {})
                total_q[choice] = total_q.get(choice, 0) + n
    return out


# --- Frequencies and cross-tabs -------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """A column of a cross-tab: the respondents who meet every clause (all respondents
    for none), or, ``outside``, those who do not."""

    clauses: Conjunction = ALL
    outside: bool = False


@dataclass(frozen=True)
class GroupCounts:
    """One group's counts for the row question: its respondents, those shown the
    question, those who answered it (the base), and per choice code those who chose it."""

    respondents: int
    shown: int
    answered: int
    chosen: dict[str, int]


def _bits_test(mask: int) -> str:
    return f"((choice_bits & {int(mask)}) <> 0)" if mask else "(1 = 0)"


def _chose(forms: dict[int, InstrumentForm], question_code: str, choice: str | None) -> str:
    """Chose ``choice`` of the question; with ``None``, any of its choices (answered it).
    A version without the question or the choice has a mask of 0: never."""
    tests = {}
    for i, form in forms.items():
        options = form.choices.get(question_code, {})
        mask = sum(1 << form.bit_of[c.pk] for code, c in options.items() if choice in (None, code))
        tests[i] = _bits_test(mask)
    return _per_instrument(forms, tests, "(1 = 0)")


def _shown(forms: dict[int, InstrumentForm], question_code: str) -> str:
    """The question was shown: it is in the respondent's version and every condition up
    its chain holds (``InstrumentForm.is_shown`` on the bits: answers to hidden questions
    are never stored, so a chosen condition choice implies its question was shown)."""
    tests = {}
    for i, form in forms.items():
        question = form.by_code.get(question_code)
        if question is None:
            tests[i] = "(1 = 0)"
            continue
        parts = []
        while question.condition_question_id:
            source = form.by_code[question.condition_question.code]  # type: ignore[union-attr]
            wanted = form.condition_codes[question.code]
            parts.append(
                _bits_test(
                    sum(
                        1 << form.bit_of[c.pk]
                        for c in form.choices[source.code].values()
                        if c.code in wanted
                    )
                )
            )
            question = source
        tests[i] = " AND ".join(parts) if parts else "(1 = 1)"
    return _per_instrument(forms, tests, "(1 = 0)")


def _in_group(forms: dict[int, InstrumentForm], group: Group) -> str:
    inside = _condition(forms, group.clauses)
    return f"NOT ({inside})" if group.outside else f"({inside})"


def count_crosstab(
    *,
    forms: dict[int, InstrumentForm],
    site_ids: list[int],
    cutoff: dt.datetime,
    question: str,
    choices: list[str],
    groups: list[Group],
) -> dict[int, list[GroupCounts]]:
    """Per site of ``site_ids``, per group: how many submitted responses (up to
    ``cutoff``) are in the group, were shown ``question``, answered it, and chose each of
    ``choices``. One scan of the responses, one query: every figure is a column of it.

    A respondent counts once per choice they chose (multiple choice: once in several
    rows), and once in the base however many choices they chose."""
    out = {
        site_id: [GroupCounts(0, 0, 0, dict.fromkeys(choices, 0)) for _ in groups]
        for site_id in site_ids
    }
    if not forms or not site_ids or not groups:
        return out
    shown, answered = _shown(forms, question), _chose(forms, question, None)
    chose = [_chose(forms, question, c) for c in choices]
    columns = []
    for group in groups:
        member = _in_group(forms, group)
        for test in ["(1 = 1)", shown, answered, *chose]:
            columns.append(f"SUM(CASE WHEN {member} AND {test} THEN 1 ELSE 0 END)")
    width = 3 + len(choices)
    with connection.cursor() as cursor:
        cursor.execute(
            _scan_sql(forms, columns, sites=len(site_ids)),
            [Response.Status.SUBMITTED, cutoff, *site_ids],
        )
        for site_id, _respondents, *values in cursor.fetchall():
            counts = [int(v or 0) for v in values]
            out[site_id] = [
                GroupCounts(
                    respondents=row[0],
                    shown=row[1],
                    answered=row[2],
                    chosen=dict(zip(choices, row[3:], strict=True)),
                )
                for row in (counts[g * width : (g + 1) * width] for g in range(len(groups)))
            ]
    return out
