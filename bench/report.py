"""Rendering, signing and verifying the evaluation report PDF: time, memory and size.

    .venv/bin/python bench/report.py [--responses 20000] [--sites 50] [--repeats 3] [--keep DIR]

1. Creates a temporary SQLite database (embedded mode: no broker, scoring in-process) and
   a development signing certificate (``kpi.evaluations.signing.make_development_certificate``) in a
   temporary folder, and points ``HYOKA_SIGNING_P12`` / ``HYOKA_SIGNING_PASSPHRASE`` at it.
2. Builds two evaluations:
   * the reference study (``surveys.demo``: 229 of 352 participants answered, 3 sites);
   * a study with the reference questionnaire and KPIs, ``--sites`` sites (the last one
     with no participants, so the "no respondents" path is drawn) and ``--responses``
     submitted responses, spread unevenly over the sites: participants and responses are
     bulk-inserted with random but valid answers as ``choice_bits`` (the bits
     ``InstrumentForm.bit_of`` gives; scoring and the report's distributions read only the
     bits, so no ``Answer`` rows are written).
   Each is scored with ``kpi.scoring.execution.run_execute``, frozen with ``evaluation_create`` and
   marked signed off (in memory), as the rendering task finds it.
3. Starts a development time-stamping authority (``kpi.evidence.tsa``) on 127.0.0.1 with a
   certificate of the run, as ``HYOKA_TSA_URL``: every signature is timestamped, carries
   its validation data and ends with a document timestamp (PAdES B-LTA), as in production.
4. For each: one untimed warm-up, then ``--repeats`` timed renders of the final report
   (``render_pdf(draft=False)``: PDF/A-3a, tagged, the evidence attached), signatures
   (``sign_pdf``, two round trips to the authority) and verifications (``verify_pdf``:
   the standalone verifier's every check), wall and CPU time (median);
   then one more render and signature under ``tracemalloc`` (Python's peak) and with the
   peak resident set (VmHWM, reset through /proc/self/clear_refs) for the RSS increase.
   The signed PDF's size and page count are reported, and it must verify.
5. The baseline, measured in the same run: WeasyPrint writing a one-page PDF of a
   paragraph with the report's stylesheet and font (no tags, no attachments), and
   pyHanko validating a plain signature on it; the figures are also given as multiples of
   it, which say more than seconds on a shared machine.

Targets: the reference report rendered, signed and timestamped in under 2 s and under
1 MB; the 50-site report in under 10 s; verifying either in under 1 s. Missed targets
print FAIL (exit status 0, as the other benchmarks do); a file that does not verify exits
1. Wall time on a busy machine overstates the work: compare it with the CPU time printed
beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import io
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:  # ``python bench/report.py`` puts bench/ first
    sys.path.insert(0, str(BASE_DIR))

from bench import harness  # noqa: E402
from bench.harness import CHANNEL_P, SINGLE_WEIGHTS, UNDERSTOOD_WEIGHTS  # noqa: E402

TARGET_REFERENCE_SECONDS = 2.0
TARGET_REFERENCE_BYTES = 1_000_000
TARGET_SITES_SECONDS = 10.0
TARGET_VERIFY_SECONDS = 1.0


def setup_django(folder: Path) -> None:
    database = f"sqlite:///{folder / 'bench.sqlite3'}"
    harness.setup_django(harness.embedded_environment(database, MEDIA_ROOT=str(folder / "media")))
    from django.conf import settings

    harness.migrate()
    path, passphrase = harness.signing_certificate(folder / "signing")
    settings.HYOKA_SIGNING_P12 = str(path)
    settings.HYOKA_SIGNING_PASSPHRASE = passphrase
    settings.HYOKA_SIGNING_TRUST_ROOTS = []


# --- building the studies -----------------------------------------------------------------


def reference_evaluation() -> Any:
    from kpi.definitions.loading import kpis_path, load_kpis
    from kpi.evaluations.services import evaluation_create
    from surveys.demo import generate_demo_responses
    from surveys.loading import load_study

    study = load_study()
    path = kpis_path()
    assert path is not None
    load_kpis(study=study, path=path)
    generate_demo_responses(study)
    return evaluation_create(run=score(study), user=None)


def score(study: Any) -> Any:
    from kpi.models import EvaluationRun
    from kpi.scoring.execution import run_execute

    run = run_execute(run_id=EvaluationRun.objects.create(study=study, trigger="command").pk)
    if run.status != EvaluationRun.Status.SUCCEEDED:
        raise SystemExit(f"scoring failed: {run.error}")
    return run


def many_sites_evaluation(sites: int, responses: int, rng: random.Random) -> Any:
    from django.db import transaction
    from django.utils import timezone

    from kpi.definitions.loading import kpis_path, load_kpis
    from kpi.evaluations.services import evaluation_create
    from surveys.answers import InstrumentForm
    from surveys.models import Participant, Response
    from tests.factories import SiteFactory, StudyFactory, reference_instrument

    opened = timezone.now() - dt.timedelta(days=30)
    with transaction.atomic():
        study = StudyFactory(
            code=f"bench-{sites}-sites",
            name_ja=f"ベンチマーク：{sites}自治体",
            name_en=f"Benchmark: {sites} sites",
        )
        instrument = reference_instrument(study)
        site_rows = [
            SiteFactory(
                study=study,
                code=f"site-{k:02d}",
                name_ja=f"第{k + 1}区",
                name_en=f"Ward {k + 1}",
                survey_opens_at=opened,
            )
            for k in range(sites)
        ]
        path = kpis_path()
        assert path is not None
        load_kpis(study=study, path=path)
        form = InstrumentForm.load(instrument)

        def bit(question: str, code: str) -> int:
            return 1 << form.bit_of[form.choices[question][code].pk]

        online = {c.code for c in form.choices["channels"].values() if "online" in c.tags}
        answering = site_rows[:-1]  # the last site has no participants at all
        weights = [rng.uniform(0.3, 1.7) for _ in answering]
        invited = int(responses / 0.65)
        site_of = rng.choices(answering, weights, k=invited)
        submitted = timezone.now() - dt.timedelta(days=1)
        participants = [
            Participant(
                site=site,
                reference=f"B{i:06d}",
                token_hash=hashlib.sha256(f"bench-{study.pk}-{i}".encode()).hexdigest(),
                invited_at=opened,
            )
            for i, site in enumerate(site_of)
        ]
        Participant.objects.bulk_create(participants, batch_size=2000)
        rows = []
        for participant in rng.sample(participants, responses):
            ticked = [c for c, p in CHANNEL_P.items() if rng.random() < p]
            bits = sum(bit("channels", c) for c in ticked) or bit("channels", "none")
            for question, options in SINGLE_WEIGHTS.items():
                bits |= bit(question, rng.choices(list(options), list(options.values()))[0])
            if online & set(ticked):  # shown only to users of an online channel
                choice = rng.choices(list(UNDERSTOOD_WEIGHTS), list(UNDERSTOOD_WEIGHTS.values()))
                bits |= bit("understood", choice[0])
            rows.append(
                Response(
                    participant=participant,
                    instrument=instrument,
                    site=participant.site,
                    status=Response.Status.SUBMITTED,
                    choice_bits=bits,
                    language="ja",
                    source=Response.Source.IMPORT,
                    started_at=submitted,
                    submitted_at=submitted,
                )
            )
        Response.objects.bulk_create(rows, batch_size=2000)
    return evaluation_create(run=score(study), user=None)


# --- measuring ----------------------------------------------------------------------------


@dataclass
class Figures:
    name: str
    pages: int = 0
    size: int = 0
    render_wall: list[float] = field(default_factory=list)
    render_cpu: list[float] = field(default_factory=list)
    sign_wall: list[float] = field(default_factory=list)
    total_wall: list[float] = field(default_factory=list)
    verify_wall: list[float] = field(default_factory=list)
    peak_mb: float = 0.0
    rss_mb: float | None = None  # increase of the peak resident set during one call
    rss_peak_mb: float | None = None  # the process's peak resident set then

    @staticmethod
    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")


def timed(call: Callable[[], Any]) -> tuple[float, float, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def signed_off(evaluation: Any) -> Any:
    """The evaluation as the rendering task sees it after a sign-off (in memory only: the
    sign-off service's password and permission checks are not what is measured)."""
    from django.utils import timezone

    from kpi.models import Evaluation

    evaluation.status = Evaluation.Status.SIGNED_OFF
    evaluation.signed_off_at = timezone.now()
    evaluation.signer_name = "ベンチマーク 担当者"
    evaluation.signer_role = "評価担当"
    evaluation.statement = "本評価の集計結果、母数、信頼区間および判定を確認しました。"
    return evaluation


def measure(name: str, evaluation: Any, repeats: int, keep: Path | None) -> Figures:
    from pypdf import PdfReader

    from kpi.evaluations.report.render import render_pdf
    from kpi.evaluations.signing import sign_pdf, verify_pdf

    figures = Figures(name)
    verified = None

    def render() -> bytes:
        return render_pdf(evaluation, draft=False)

    def sign(pdf: bytes) -> bytes:
        return sign_pdf(pdf, reason=f"Hyoka benchmark, evaluation {evaluation.pk}")

    sign(render())  # warm-up: templates, fonts, the certificate
    signed = b""
    for _ in range(repeats):
        render_wall, render_cpu, pdf = timed(render)
        sign_wall, _, signed = timed(lambda pdf=pdf: sign(pdf))
        verify_wall, _, verified = timed(lambda signed=signed: verify_pdf(signed))
        figures.verify_wall.append(verify_wall)
        figures.render_wall.append(render_wall)
        figures.render_cpu.append(render_cpu)
        figures.sign_wall.append(sign_wall)
        figures.total_wall.append(render_wall + sign_wall)
    figures.size = len(signed)
    figures.pages = len(PdfReader(io.BytesIO(signed)).pages)
    if verified is None or not verified.passed:
        problems = "; ".join(verified.failures) if verified else "not verified"
        raise SystemExit(f"{name}: the signed PDF does not verify: {problems}")
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
        (keep / f"{name}.pdf").write_bytes(signed)

    before = harness.status_kb("VmRSS")
    resettable = harness.reset_peak_rss()
    sign(render())
    peak = harness.status_kb("VmHWM") if resettable else None
    if before is not None and peak is not None:
        figures.rss_mb = max(0, peak - before) / 1024
        figures.rss_peak_mb = peak / 1024
    tracemalloc.start()
    try:
        sign(render())
        figures.peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    return figures


@dataclass
class Baseline:
    render: float  # s, a one-page PDF by WeasyPrint
    verify: float  # s, pyHanko validating a plain signature on it


def baseline(repeats: int) -> Baseline:
    """A one-page PDF of a paragraph with the report's stylesheet and font, and the
    validation of a plain signature on it: the floor of what the same libraries cost."""
    import weasyprint
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign import signers
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    from kpi.evaluations.report.fetcher import StaticFilesFetcher, base_url
    from kpi.evaluations.signing import _signer

    html = (
        '<html lang="ja"><head><link rel="stylesheet" href="kpi/report.css"></head>'
        "<body><h1>評価報告書</h1><p>回答率 65 %（229 / 352）。</p></body></html>"
    )

    def render() -> bytes:
        document = weasyprint.HTML(
            string=html, base_url=base_url(), url_fetcher=StaticFilesFetcher()
        )
        return document.write_pdf()

    signer = _signer()
    pdf = render()
    out = signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(pdf)),
        signers.PdfSignatureMetadata(field_name="Baseline"),
        signer=signer,
    ).getvalue()

    def verify() -> None:
        signature = PdfFileReader(io.BytesIO(out)).embedded_signatures[0]
        validate_pdf_signature(
            signature, ValidationContext(trust_roots=[signer.signing_cert], allow_fetching=False)
        )

    render_times = [timed(render)[0] for _ in range(repeats)]
    verify_times = [timed(verify)[0] for _ in range(repeats)]
    return Baseline(statistics.median(render_times), statistics.median(verify_times))


def report(figures: Figures, targets: list[tuple[str, bool]], base: Baseline) -> None:
    m = Figures.median
    print(f"\n{figures.name}: {figures.pages} pages, signed PDF {figures.size / 1024:.0f} KiB")
    print(
        f"  render {m(figures.render_wall):.2f} s wall ({m(figures.render_cpu):.2f} s CPU), "
        f"sign + timestamp {m(figures.sign_wall):.3f} s, render + sign "
        f"{m(figures.total_wall):.2f} s = {harness.ratio(m(figures.total_wall), base.render)} "
        f"the baseline (median of {len(figures.total_wall)}; best {min(figures.total_wall):.2f} s)"
    )
    print(
        f"  verify {m(figures.verify_wall):.3f} s = "
        f"{harness.ratio(m(figures.verify_wall), base.verify)} the baseline's validation"
    )
    rss = (
        f"peak RSS {figures.rss_peak_mb:.0f} MB, {figures.rss_mb:.0f} MB above the RSS before"
        if figures.rss_mb is not None and figures.rss_peak_mb is not None
        else "RSS n/a"
    )
    print(f"  peak memory: Python {figures.peak_mb:.0f} MB (tracemalloc); {rss}")
    for label, ok in targets:
        print(f"  {'PASS' if ok else 'FAIL'}  {label}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--responses", type=int, default=20_000)
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the signed PDFs to this folder")
    parser.add_argument("--seed", type=int, default=2021)
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="hyoka-bench-report-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        folder = Path(tmp)
        setup_django(folder)
        from django.conf import settings

        from kpi.evidence.tsa import make_authority, serve_authority

        authority_files = make_authority(folder / "tsa")
        authority = stack.enter_context(serve_authority(authority_files))
        settings.HYOKA_TSA_URL = authority.url
        settings.HYOKA_TSA_TRUST_ROOTS = [str(authority_files.certificate)]
        base = baseline(args.repeats + 2)
        print(
            f"baseline: a one-page PDF by WeasyPrint in {base.render:.3f} s; pyHanko "
            f"validating a plain signature on it in {base.verify:.3f} s"
        )
        started = time.perf_counter()
        reference = reference_evaluation()
        print(f"reference study built and scored in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        many = many_sites_evaluation(args.sites, args.responses, random.Random(args.seed))
        print(
            f"{args.sites}-site study with {args.responses:,} responses built and scored in "
            f"{time.perf_counter() - started:.1f} s"
        )

        ref = measure("reference", signed_off(reference), args.repeats, args.keep)
        report(
            ref,
            [
                (
                    f"reference: render + sign under {TARGET_REFERENCE_SECONDS:.0f} s "
                    f"(median {Figures.median(ref.total_wall):.2f} s)",
                    Figures.median(ref.total_wall) < TARGET_REFERENCE_SECONDS,
                ),
                (
                    f"reference: signed PDF under 1 MB ({ref.size:,} bytes)",
                    ref.size < TARGET_REFERENCE_BYTES,
                ),
                (
                    f"reference: verified under {TARGET_VERIFY_SECONDS:.0f} s "
                    f"(median {Figures.median(ref.verify_wall):.2f} s)",
                    Figures.median(ref.verify_wall) < TARGET_VERIFY_SECONDS,
                ),
            ],
            base,
        )
        big = measure(f"{args.sites}-sites", signed_off(many), args.repeats, args.keep)
        report(
            big,
            [
                (
                    f"{args.sites} sites: render + sign under {TARGET_SITES_SECONDS:.0f} s "
                    f"(median {Figures.median(big.total_wall):.2f} s)",
                    Figures.median(big.total_wall) < TARGET_SITES_SECONDS,
                ),
                (
                    f"{args.sites} sites: verified under {TARGET_VERIFY_SECONDS:.0f} s "
                    f"(median {Figures.median(big.verify_wall):.2f} s)",
                    Figures.median(big.verify_wall) < TARGET_VERIFY_SECONDS,
                ),
            ],
            base,
        )
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"\nload average during the run: {load:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
