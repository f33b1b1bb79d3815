"""The signed PDF's attachments under the small-cell rule: a report that withholds per-site
counts ("<5", "x") must not attach them. The reference study (k = 5, its default) has two
sites with small cells (Itabashi and Setagaya; Fuchu has no respondents): its signed PDF
attaches published.json instead of snapshot.json, and neither it nor counts.json nor the
manifest carries a withheld count; the standalone verifier passes it, saying the snapshot
is not attached by design, and fails a copy whose published.json carries a withheld count
again. The small counts are found here from the raw answers, not from the code under test.

k = 1 keeps snapshot.json (and every other assertion of test_evidence.py, which runs the
same study at k = 1).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from kpi.evaluations import evidence as evidences
from kpi.evaluations import snapshot as snapshots
from kpi.evaluations.report import render
from kpi.evaluations.signing import sign_pdf
from scripts import verify_evaluation as verifier
from surveys.models import Answer, Response, Study
from tests.factories import build_reference_study
from tests.kpi.evaluations.conftest import evaluated, signing_and_stamping

from .test_evidence import edited, forged_evidence, replace_attachment

# The module's files are built on the test database, which pytest-django sets up only
# for a session with a test that asks for one.
pytestmark = pytest.mark.django_db

#: The answers to "continue" that the KPI does not count (its numerator is the top two).
CONTINUE_NOT_COUNTED = {"somewhat_disagree", "disagree"}


def raw_counts(study: Study) -> dict[str, Any]:
    """From the submitted answers: each site's respondents, each site's count of each
    choice of each question, and each site's respondents who did not agree that the
    service should continue (the complement of the "continue" KPI)."""
    respondents = Counter(
        Response.objects.filter(site__study=study, status=Response.Status.SUBMITTED).values_list(
            "site__code", flat=True
        )
    )
    answers = Answer.objects.filter(
        response__site__study=study, response__status=Response.Status.SUBMITTED
    ).values_list("response__site__code", "question__code", "choice__code")
    choices: dict[str, dict[str, Counter[str]]] = {}
    for site, question, choice in answers:
        if choice:
            choices.setdefault(site, {}).setdefault(question, Counter())[choice] += 1
    not_continue = {
        site: sum(
            n
            for c, n in by_question.get("continue", Counter()).items()
            if c in CONTINUE_NOT_COUNTED
        )
        for site, by_question in choices.items()
    }
    return {"respondents": respondents, "choices": choices, "not_continue": not_continue}


@pytest.fixture(scope="module")
def files(django_db_setup, django_db_blocker, signing_settings, tsa_files, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The honest signed report at k = 5, a forged copy whose published.json carries a
    withheld count, and the same study's report at k = 1; the raw counts."""
    folder = tmp_path_factory.mktemp("small-cells")
    out: dict[str, Any] = {}
    with signing_and_stamping(django_db_blocker, signing_settings, tsa_files):
        study = build_reference_study()
        assert study.small_cell_threshold == 5  # the default
        out["raw"] = raw_counts(study)

        def write(name: str, evaluation: Any) -> None:
            pdf = sign_pdf(render.render_pdf(evaluation, draft=False), reason="test")
            out[name] = folder / f"{name}.pdf"
            out[name].write_bytes(pdf)

        evaluation = evaluated(study)
        out["full"] = evaluation.snapshot
        write("honest", evaluation)

        def leak(document: dict[str, Any]) -> None:
            # A withheld numerator put back, as the full snapshot has it.
            exact = {(r["kpi_code"], r["site"]): r for r in evaluation.snapshot["results"]}
            for row in document["results"]:
                if row["site"] and row["numerator"] is None:
                    row["numerator"] = exact[(row["kpi_code"], row["site"])]["numerator"]
                    return

        def with_leak(e: evidences.Evidence) -> evidences.Evidence:
            # The forger prints the leaking file's digest too: only the marks catch it.
            changed = replace_attachment(e, "published.json", edited(e.attachments[0].data, leak))
            manifest = {
                **e.manifest,
                "attachments": {a.name: a.sha256 for a in changed.attachments},
            }
            return evidences.Evidence(changed.attachments, manifest)

        with forged_evidence(with_leak):
            write("leaking", evaluation)

        def counts_leak(e: evidences.Evidence) -> evidences.Evidence:
            exact = evidences.canonical(evidences.counts_document(evaluation.snapshot))
            changed = replace_attachment(e, "counts.json", exact)
            manifest = {
                **e.manifest,
                "attachments": {a.name: a.sha256 for a in changed.attachments},
            }
            return evidences.Evidence(changed.attachments, manifest)

        with forged_evidence(counts_leak):
            write("leaking-counts", evaluation)

        def whole_study_interval(document: dict[str, Any]) -> None:
            row = next(r for r in document["results"] if r["site"] is None and r["comparator"])
            row["ci_low"] = 0.5

        with forged_evidence(
            lambda e: replace_attachment(
                e, "published.json", edited(e.attachments[0].data, whole_study_interval)
            )
        ):
            write("changed-published", evaluation)

        Study.objects.filter(pk=study.pk).update(small_cell_threshold=1)
        study.refresh_from_db()
        write("k1", evaluated(study))
    out["signer"] = Path(signing_settings["HYOKA_SIGNING_P12"]).with_suffix(".pem")
    out["tsa"] = tsa_files.certificate
    return out


def attached(path: Path) -> dict[str, Any]:
    """Every attachment of the signed PDF, read with pypdf, JSON parsed."""
    reader = PdfReader(path)
    return {
        name: json.loads(data[0]) if name.endswith(".json") else data[0]
        for name, data in reader.attachments.items()
    }


def standalone(files: dict[str, Any], name: str) -> tuple[int, str]:
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        status = verifier.main(
            [str(files[name]), "--trust", str(files["signer"]), "--trust", str(files["tsa"])]
        )
    return status, output.getvalue()


def failures(text: str) -> list[str]:
    return [line.removeprefix("FAIL  ") for line in text.splitlines() if line.startswith("FAIL")]


def small_choices(raw: dict[str, Any]) -> list[tuple[str, str, str, int]]:
    return [
        (site, question, choice, n)
        for site, by_question in raw["choices"].items()
        for question, counts in by_question.items()
        for choice, n in counts.items()
        if 1 <= n <= 4
    ]


def test_the_study_has_small_cells_at_two_sites(files):
    # The premise, from the raw answers: without small cells this module tests nothing.
    small = small_choices(files["raw"])
    assert {site for site, *_ in small} == {"itabashi", "setagaya"}
    assert any(1 <= n <= 4 for n in files["raw"]["not_continue"].values())


def test_the_full_snapshot_is_not_attached_and_its_digest_is_the_commitment(files):
    documents = attached(files["honest"])
    assert sorted(documents) == ["counts.json", "manifest.json", "published.json"]
    manifest = documents["manifest.json"]
    assert manifest["snapshot_sha256"] == snapshots.digest(files["full"])
    assert manifest["withheld"]["threshold"] == 5
    assert documents["published.json"]["withheld"] == manifest["withheld"]


def test_no_attachment_carries_a_small_choice_count_of_a_site(files):
    documents = attached(files["honest"])
    published = documents["published.json"]["distributions"]["by_site"]
    marks = documents["manifest.json"]["withheld"]["distributions"]
    small = small_choices(files["raw"])
    for site, question, choice, _n in small:
        assert published[site][question][choice] is None, (site, question, choice)
        assert marks[site][question][choice] == "<5", (site, question, choice)
    # Every other site count is as answered, or withheld ("x") with a null.
    for site, by_question in files["raw"]["choices"].items():
        for question, counts in by_question.items():
            for choice, n in counts.items():
                shown = published[site][question].get(choice)
                assert shown in (n, None)
                if shown is None:
                    assert marks[site][question][choice] in ("<5", "x")
    # The whole study's distribution is exact.
    assert (
        documents["published.json"]["distributions"]["overall"]
        == (files["full"]["distributions"]["overall"])
    )


def test_no_attachment_gives_a_small_complement_back(files):
    """ "x of n agreed" names the few who did not: where fewer than 5 of a site did not
    agree, its numerator, share, interval and verdict are in no attachment."""
    documents = attached(files["honest"])
    raw = files["raw"]
    withheld_sites = [s for s, n in raw["not_continue"].items() if 1 <= n <= 4]
    assert withheld_sites
    for site in withheld_sites:
        counts = next(
            r
            for r in documents["counts.json"]["results"]
            if (r["kpi"], r["site"]) == ("continue", site)
        )
        assert counts["numerator"] is None and counts["withheld"]["numerator"] in ("<5", "x")
        assert counts["denominator"] == raw["respondents"][site]  # the base is shown
        result = next(
            r
            for r in documents["published.json"]["results"]
            if (r["kpi_code"], r["site"]) == ("continue", site)
        )
        for name in (
            "numerator",
            "value",
            "ci_low",
            "ci_high",
            "verdict",
            "nonresponse_low",
            "tipping_count",
        ):
            assert result[name] is None, name
        figure = next(
            f
            for f in documents["manifest.json"]["figures"]
            if (f["kpi"], f["site"]) == ("continue", site)
        )
        assert (figure["value"], figure["verdict"]) == ("", "inconclusive")
    # Nor do the numbers appear anywhere as that cell: the site's agreeing count is
    # nowhere in its row of any attachment.
    for site in withheld_sites:
        agreeing = raw["respondents"][site] - raw["not_continue"][site]
        for name in ("counts.json", "published.json"):
            rows = documents[name]["results"]
            row = next(
                r
                for r in rows
                if r.get("kpi", r.get("kpi_code")) == "continue" and r["site"] == site
            )
            assert agreeing not in [v for k, v in row.items() if k in ("numerator",)]
    # The whole study's row is exact.
    whole = next(
        r
        for r in documents["counts.json"]["results"]
        if (r["kpi"], r["site"]) == ("continue", None)
    )
    assert whole["numerator"] == sum(raw["respondents"].values()) - sum(
        raw["not_continue"].values()
    )


def test_the_verifier_passes_it_and_says_the_snapshot_is_withheld_by_design(files):
    status, output = standalone(files, "honest")
    assert (status, failures(output)) == (0, []), output
    assert output.rstrip().endswith("VERIFIED")
    notes = [
        line for line in output.splitlines() if "snapshot.json: not attached, by design" in line
    ]
    assert len(notes) == 1
    assert "withheld figures not recomputable by design" in output
    assert "OK    small cells:" in output


def test_the_verifier_fails_a_published_json_carrying_a_withheld_count(files):
    status, output = standalone(files, "leaking")
    assert status == 1
    assert any(
        "published.json carries numerator" in line and "which the report withholds" in line
        for line in failures(output)
    ), output


def test_the_verifier_fails_counts_carrying_the_withheld_counts(files):
    status, output = standalone(files, "leaking-counts")
    assert status == 1
    assert any("counts.json carries numerator" in line for line in failures(output)), output


def test_the_verifier_fails_a_changed_published_json(files):
    status, output = standalone(files, "changed-published")
    assert status == 1
    found = failures(output)
    assert any(line.startswith("published.json: SHA-256") for line in found), output
    assert any("the snapshot's interval 0.5.." in line for line in found), output


def test_protection_off_keeps_the_full_snapshot_attached(files):
    documents = attached(files["k1"])
    assert "snapshot.json" in documents and "published.json" not in documents
    assert "withheld" not in documents["manifest.json"]
    assert all("withheld" not in r for r in documents["counts.json"]["results"])
    status, output = standalone(files, "k1")
    assert (status, failures(output)) == (0, []), output
    assert "not attached, by design" not in output


def test_a_snapshot_signed_before_the_threshold_keeps_its_attachments_byte_for_byte(files):
    """A snapshot with no threshold (every report signed before there was one) reads as
    k = 1: its attachments are the full snapshot's exact bytes and the counts in their
    old form, and the manifest has nothing new."""
    from kpi.evaluations.models import Evaluation

    old = json.loads(json.dumps(files["full"]))
    del old["study"]["small_cell_threshold"]
    evidence = evidences.build(Evaluation(pk=7, snapshot=old))
    assert [a.name for a in evidence.attachments] == ["snapshot.json", "counts.json"]
    dumps = {"sort_keys": True, "ensure_ascii": False, "separators": (",", ":")}
    assert evidence.attachments[0].data == json.dumps(old, **dumps).encode()  # type: ignore[arg-type]
    fields = ["kind", "numerator", "denominator", "overlap", "respondents", "invited"]
    fields += ["confidence", "comparator", "threshold", "rule", "min_n"]
    counts = {
        "format": 1,
        "study": old["study"]["code"],
        "results": [
            {
                "kpi": r["kpi_code"],
                "site": r["site"],
                **{f: r[f] for f in fields},
                "sum_squares": None,
            }
            for r in old["results"]
        ],
    }
    assert evidence.attachments[1].data == json.dumps(counts, **dumps).encode()  # type: ignore[arg-type]
    assert sorted(evidence.manifest) == [
        "attachments",
        "deviations",
        "evaluation",
        "fieldwork_opened",
        "figures",
        "format",
        "registration",
        "study",
    ]
    # The sites whose figures k = 5 withholds print them at k = 1.
    printed = {
        f["site"]: f["value"] for f in evidence.manifest["figures"] if f["kpi"] == "continue"
    }
    assert printed["itabashi"] and printed["setagaya"]


def test_a_small_number_invited_is_withheld_in_the_attachments_with_its_figures():
    """Three invited at site a (all answered), 50 at b: a's invited is "<5", b's "x" (the
    study's 53 would give a's back), and the figures computed from them are null."""
    from kpi.scoring.models import INVITED_FIGURES

    def row(site: str | None, n: int, d: int, invited: int) -> dict[str, Any]:
        figures = dict.fromkeys(INVITED_FIGURES, 0.5)
        return {"kpi_code": "rate", "site": site, "kind": "share", "numerator": n,
                "denominator": d, "overlap": None, "respondents": d, "invited": invited,
                **figures}  # fmt: skip

    # A share over everyone who answered: base 3 at a, 40 at b.
    snapshot = {
        "study": {"code": "s", "small_cell_threshold": 5},
        "results": [row(None, 30, 43, 53), row("a", 2, 3, 3), row("b", 28, 40, 50)],
    }
    marks = evidences.withheld_marks(snapshot)
    assert marks is not None
    for site in ("a", "b"):
        assert "invited" in marks["results"]["rate"][site], site
    assert marks["results"]["rate"]["a"]["invited"] == "<5"
    published = evidences.published_document(snapshot, marks)
    by_site = {r["site"]: r for r in published["results"]}
    for site in ("a", "b"):
        assert by_site[site]["invited"] is None
        assert all(by_site[site][name] is None for name in INVITED_FIGURES)
    assert by_site[None]["invited"] == 53  # the study's figures are exact
    assert all(by_site[None][name] == 0.5 for name in INVITED_FIGURES)
