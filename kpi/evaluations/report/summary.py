"""The report's one-page summary in plain words, for a reader who is not a statistician.

Built from the snapshot's whole-study results alone (no database): how many answered of
how many invited, how many targets were set and met (and with what confidence, in the
words of the one formatter, ``kpi.scoring.wording``), which were not met or inconclusive,
what non-response could change, and the other figures in words. The non-response sentence
makes the Methods' one assumption: every non-respondent answers (``nonresponse_low`` and
``nonresponse_high`` are the share over everyone invited if all of them had answered no,
or all yes). Call inside ``translation.override``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _

from kpi.scoring import statistics as st
from kpi.scoring import wording
from kpi.scoring.wording import Result

from . import text
from .words import pick

Data = dict[str, Any]


@dataclass
class Item:
    """One figure in words: "Felt reassured: 100 % (229 of 229)"."""

    name: str
    value: str  # as published, "99 %"
    counts: str  # "227 of 229", or "" (a mean)
    target: str = ""  # "at least 70 %"
    verdict: str = ""  # the verdict key: "met_confident", "met", "not_met", "inconclusive"
    verdict_text: str = ""  # in the formatter's words
    mark: str = ""


@dataclass
class Summary:
    respondents: str  # the response sentence
    targets: str  # how many targets, how many met
    items: list[Item] = field(default_factory=list)  # each target and its verdict
    shortfalls: list[str] = field(default_factory=list)  # not met, inconclusive: by name
    nonresponse: list[str] = field(default_factory=list)
    figures: list[Item] = field(default_factory=list)  # the figures without a target


def _join_sentences(sentences: list[str]) -> str:
    # Japanese runs sentences together; English separates them with a space.
    return ("" if (get_language() or "ja").startswith("ja") else " ").join(
        s for s in sentences if s
    )


def _names(names: list[str]) -> str:
    return text.join([text.quoted(name) for name in names])


def counts_words(r: Result) -> str:
    """The counts a figure is made of, in words: "227 of 229", "156 to 50"."""
    if r.kind == "share":
        return _("%(count)s of %(base)s") % {
            "count": wording.integer(r.numerator),
            "base": wording.integer(r.denominator),
        }
    if r.kind == "ratio":
        return _("%(count)s to %(base)s") % {
            "count": wording.integer(r.numerator),
            "base": wording.integer(r.denominator),
        }
    return _("mean of %(n)s answers") % {"n": wording.integer(r.denominator)}


def _item(result: Data) -> Item:
    r = Result.of(result)
    key = wording.verdict_key(r)
    return Item(
        name=pick(result, "name") or result["kpi_code"],
        value=wording.headline(r) if r.value is not None else "",
        counts=counts_words(r) if r.value is not None else wording.empty_value(r),
        target=wording.target(r),
        verdict=key if r.comparator else "",
        verdict_text=wording.verdict_text(r) if r.comparator else "",
        mark=wording.MARKS[key] if r.comparator else "",
    )


def _share_target(r: Result) -> Fraction:
    assert r.threshold is not None
    threshold = Fraction(r.threshold)
    return threshold / 100 if r.kind == "share" else threshold


def still_met_if_unfavourable(r: Result) -> bool | None:
    """Would the target be met over everyone invited if every non-respondent had answered
    against it? None: the result has no non-response range (its base is a group of
    respondents, or nobody answered)."""
    if r.nonresponse_low is None or r.nonresponse_high is None or r.threshold is None:
        return None
    raises = r.comparator in (st.Comparator.GTE, st.Comparator.GT)
    worst = r.nonresponse_low if raises else r.nonresponse_high
    return st.meets(worst, st.Comparator(r.comparator), _share_target(r))


def met_if_favourable(r: Result) -> bool | None:
    """Would the target be met over everyone invited if every non-respondent had answered
    for it? None: no non-response range."""
    if r.nonresponse_low is None or r.nonresponse_high is None or r.threshold is None:
        return None
    raises = r.comparator in (st.Comparator.GTE, st.Comparator.GT)
    best = r.nonresponse_high if raises else r.nonresponse_low
    return st.meets(best, st.Comparator(r.comparator), _share_target(r))


def _is_response_rate(result: Data, definition: Data | None) -> bool:
    if definition is not None:
        return bool(definition["base"] == "invited" and definition["numerator"] is None)
    return bool(
        result["kind"] == "share"
        and result["numerator"] == result["respondents"]
        and result["denominator"] == result["invited"]
    )


def _respondents_sentence(overall: list[Data]) -> str:
    if not overall:
        return _("No results were counted for this study.")
    first = overall[0]
    respondents, invited = int(first["respondents"]), int(first["invited"])
    values = {
        "respondents": wording.integer(respondents),
        "invited": wording.integer(invited),
        "rate": wording.pct(Fraction(respondents, invited)) if invited else "",
    }
    if not invited:
        return _("Nobody was invited to answer the questionnaire.")
    if not respondents:
        return (
            ngettext(
                "The %(invited)s person invited did not answer the questionnaire, so no "
                "figure could be computed.",
                "None of the %(invited)s people invited answered the questionnaire, so no "
                "figure could be computed.",
                invited,
            )
            % values
        )
    return (
        ngettext(
            "%(respondents)s of the %(invited)s person invited answered the questionnaire: "
            "a response rate of %(rate)s.",
            "%(respondents)s of the %(invited)s people invited answered the questionnaire: "
            "a response rate of %(rate)s.",
            invited,
        )
        % values
    )


def _targets_sentence(items: list[Item]) -> str:
    total = len(items)
    if not total:
        return _(
            "No target was set before the study: the figures below describe the answers "
            "and are not judged against a target."
        )
    met = sum(1 for i in items if i.verdict in ("met", "met_confident"))
    confident = sum(1 for i in items if i.verdict == "met_confident")
    values = {"total": total, "met": met, "confident": confident}
    sentences = [
        ngettext(
            "One target was set before the study.",
            "%(total)d targets were set before the study.",
            total,
        )
        % values
    ]
    if met == total and confident == met:
        sentences.append(
            ngettext(
                "It was met with confidence.", "All %(total)d were met with confidence.", total
            )
            % values
        )
    elif met == total and confident:
        sentences.append(
            _("All %(total)d were met, %(confident)d of them with confidence.") % values
        )
    elif met == total:
        sentences.append(
            ngettext(
                "It was met, but not with confidence.",
                "All %(total)d were met, none of them with confidence.",
                total,
            )
            % values
        )
    elif met:
        sentences.append(
            ngettext(
                "%(met)d of them was met, %(confident)d with confidence.",
                "%(met)d of them were met, %(confident)d with confidence.",
                met,
            )
            % values
        )
    elif all(i.verdict == "inconclusive" for i in items):
        sentences.append(
            ngettext("It could not be judged.", "None of them could be judged.", total) % values
        )
    else:
        sentences.append(ngettext("It was not met.", "None of them was met.", total) % values)
    if confident:
        sentences.append(
            _(
                '"Met with confidence" means that even the unfavourable end of the '
                "confidence interval meets the target."
            )
        )
    return _join_sentences(sentences)


def _shortfalls(items: list[Item]) -> list[str]:
    out = []
    not_met = [i.name for i in items if i.verdict == "not_met"]
    inconclusive = [i.name for i in items if i.verdict == "inconclusive"]
    if not_met:
        out.append(_("Not met: %(names)s.") % {"names": _names(not_met)})
    if inconclusive:
        out.append(
            _(
                "Inconclusive, because fewer people answered than the target needs to be "
                "judged: %(names)s."
            )
            % {"names": _names(inconclusive)}
        )
    return out


def _nonresponse(judged: list[Result]) -> list[str]:
    """What non-respondents could change, under the Methods' assumption (all answer)."""
    if not judged:
        return []
    first = judged[0]
    missing = first.non_respondents
    if first.respondents == 0 or missing <= 0:
        return []
    covered = [r for r in judged if still_met_if_unfavourable(r) is not None]
    sentences = [
        _("%(missing)s of the %(invited)s invited did not answer.")
        % {"missing": wording.integer(missing), "invited": wording.integer(first.invited)}
    ]
    met = [r for r in covered if r.verdict == st.Verdict.MET]
    if met:
        still = sum(1 for r in met if still_met_if_unfavourable(r))
        values = {"still": still, "met": len(met)}
        if len(met) > 1 and still == len(met):
            sentences.append(
                _(
                    "Had every one of them answered, and answered unfavourably, all %(met)d "
                    "targets met that are measured over all respondents would still be met."
                )
                % values
            )
        elif len(met) > 1 and still == 0:
            sentences.append(
                _(
                    "Had every one of them answered, and answered unfavourably, none of the "
                    "%(met)d targets met that are measured over all respondents would still "
                    "be met."
                )
                % values
            )
        elif len(met) > 1:
            sentences.append(
                _(
                    "Had every one of them answered, and answered unfavourably, %(still)d of "
                    "the %(met)d targets met that are measured over all respondents would "
                    "still be met."
                )
                % values
            )
        elif still:
            sentences.append(
                _(
                    "Had every one of them answered, and answered unfavourably, the target "
                    "met that is measured over all respondents would still be met."
                )
            )
        else:
            sentences.append(
                _(
                    "Had every one of them answered, and answered unfavourably, the target "
                    "met that is measured over all respondents would no longer be met."
                )
            )
        counts = [r.tipping_count for r in met if r.tipping_count is not None]
        if counts:
            fewest = min(counts)
            sentences.append(
                _(
                    "But it would take at least %(fewest)s of the %(missing)s answering "
                    "unfavourably to change a verdict."
                )
                % {"fewest": wording.integer(fewest), "missing": wording.integer(missing)}
            )
    not_met = [r for r in covered if r.verdict == st.Verdict.NOT_MET]
    if not_met:
        turned = sum(1 for r in not_met if met_if_favourable(r))
        if len(not_met) > 1:
            sentences.append(
                _(
                    "Had every one of them answered favourably, %(turned)d of the "
                    "%(not_met)d targets not met would have been met."
                )
                % {"turned": turned, "not_met": len(not_met)}
            )
        elif turned:
            sentences.append(
                _(
                    "Had every one of them answered favourably, the target not met would have "
                    "been met."
                )
            )
        else:
            sentences.append(
                _(
                    "Had every one of them answered favourably, the target not met would still "
                    "not be met."
                )
            )
    others = sum(
        1
        for r in judged
        if still_met_if_unfavourable(r) is None and r.verdict != st.Verdict.INCONCLUSIVE
    )
    if others:
        sentences.append(
            ngettext(
                "%(others)d target is measured over a group of respondents only (for "
                "example those who used the service): what non-respondents would have "
                "answered cannot be counted in it.",
                "%(others)d targets are measured over a group of respondents only (for "
                "example those who used the service): what non-respondents would have "
                "answered cannot be counted in them.",
                others,
            )
            % {"others": others}
        )
    return sentences


def build(snapshot: Data) -> Summary:
    """The summary's sentences from a snapshot (the whole-study results, in order)."""
    definitions = {d["code"]: d for d in snapshot.get("definitions", [])}
    overall = [r for r in snapshot.get("results", []) if r["site"] is None]
    with_target = [r for r in overall if r["comparator"]]
    items = [_item(r) for r in with_target]
    figures = [
        _item(r)
        for r in overall
        if not r["comparator"]
        and r["value"] is not None
        and r.get("group") != "channel_table"
        and not _is_response_rate(r, definitions.get(r["kpi_code"]))
    ]
    return Summary(
        respondents=_respondents_sentence(overall),
        targets=_targets_sentence(items) if overall else "",
        items=items,
        shortfalls=_shortfalls(items),
        nonresponse=_nonresponse([Result.of(r) for r in with_target]),
        figures=figures,
    )
