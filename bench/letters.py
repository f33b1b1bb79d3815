"""Printed letters: how fast ``fieldwork.letters`` renders them, and where the time goes.

    .venv/bin/python bench/letters.py [--count 10000] [--batch 200] [--workers 2] [--keep DIR]

1. Builds ``--count`` letters (half Japanese, half English, a different address, name and
   random link each, as ``Letter`` values: the renderer reads no database).
2. The reference study's 352 letters as ONE PDF (``render_letters``): wall and CPU time.
   Target: under 10 s.
3. ``--count`` letters in batches of ``--batch`` (``render_letters_batched``), with a
   progress line per batch, first in this process, then in ``--workers`` processes; the
   batch PDFs are then concatenated into one file with pypdf (timed separately).
   Target: at least 60 letters per second.
4. The CPU time of 50 letters split into the renderer's stages: the QR codes (segno), the
   rest of the drawing (text wrapping and placing, the QR path), the PDF output (font
   subsets, compressed streams).

Missed targets print FAIL (exit status 0, as the other benchmarks do). Wall time on a busy
machine overstates the work: compare it with the CPU time printed beside it.

Measured with the ReportLab renderer (2 cores, 0 % idle: four other agents' work running,
load 5-7, so wall times are 2-4x the CPU; CPU time from getrusage/process_time):
10 ms CPU a letter (9.7 ms for 1,000 in one document in one process). The 352 letters as
one PDF: 8.4 s wall, 3.5 s CPU, 0.94 MB [< 10 s: ok]. 10,000 in batches of 200: one
process 383 s wall / 97.6 s CPU (26/s wall on the loaded machine, ~100/s a core by CPU);
two processes 150 s wall / 98.3 s CPU, 66.7 letters/s [>= 60/s: ok]; concatenating the 50
batch PDFs into one 28.5 MB file with pypdf costs another 12-17 s (59.7/s including it).
Stages (50 letters): segno 5.5-8 ms (its choice of the best of 8 masks is most of it; a
fixed mask would take 1.7 ms, not done: the mask evaluation is what keeps a code easy to
scan), the rest of the drawing 3, PDF output 1 ms CPU a letter. On an idle machine that is
about 100 letters/s a core, 3.5 s for the 352. A later run with less load (3 % idle,
load 3-5; English paragraphs justified by then): the 352 in 3.0 s wall / 2.8 s CPU, 1,000
in two processes at 99.5/s (8 ms CPU a letter); stages segno 5.3, drawing 2.9, PDF 0.9 ms.

Before, with WeasyPrint (the first landing, same machine and load): 79 ms CPU a letter in
one process (62 ms in a 50-letter document: layout 40, PDF output 16, segno 7; the QR
code's path costs about 17 ms of it). The 352 letters took 27.5 s CPU (64 s wall); 1,000
in batches of 200 ran at 4.5 letters/s in one process and 5.2/s in two: neither target
met. What was tried there: one compiled template and stylesheet, one document per batch,
the QR code as segno's single path, a third fewer elements per letter (108 -> 72 ms CPU).
Hence the fixed-position renderer: 6-8x less CPU a letter. The ReportLab prototype
(before the QR path was written as PDF operators and rl_accel installed) took 14.6 ms.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:  # ``python bench/letters.py`` puts bench/ first
    sys.path.insert(0, str(BASE_DIR))

from bench import harness  # noqa: E402

REFERENCE_COUNT = 352
TARGET_REFERENCE_SECONDS = 10.0
TARGET_RATE = 60.0

WARDS = [
    "渋谷区神宮前",
    "横浜市中区山下町",
    "大阪市北区梅田",
    "札幌市中央区北一条西",
    "福岡市博多区博多駅前",
]
FAMILY = ["山田", "佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "中村"]
GIVEN = ["花子", "太郎", "陽菜", "蓮", "結衣", "大翔", "美咲", "健"]
SENDER = (
    "渋谷区 子ども家庭部 子育て支援課",
    "〒150-8010 東京都渋谷区宇田川町1-1",
    "電話 03-3463-1211（代表）",
)
PURPOSE_JA = (
    "本区では、子育て中のご家庭を対象に、オンライン相談サービスの試行を行いました。\n\n"
    "このアンケートは、サービスの効果を確かめ、今後の事業の改善に役立てるためのものです。"
    "回答内容は統計的に処理し、個人が特定されることはありません。"
)
PURPOSE_EN = (
    "The ward ran a trial of an online counselling service for families with young "
    "children.\n\nThis survey tells us whether it helped, so that we can improve it. "
    "Answers are analysed as statistics only; no one can be identified from them."
)


def cpu_seconds() -> float:
    """CPU time of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def build(count: int, seed: int = 14) -> list[Any]:
    from fieldwork.letters import Letter

    rng = random.Random(seed)
    letters = []
    for n in range(count):
        english = n % 2 == 1
        family, given = rng.choice(FAMILY), rng.choice(GIVEN)
        postcode = f"〒{rng.randint(100, 999)}-{rng.randint(0, 9999):04d}"
        block = f"{rng.randint(1, 9)}丁目{rng.randint(1, 30)}番{rng.randint(1, 20)}号"
        street = f"{rng.choice(WARDS)}{block}"
        letters.append(
            Letter(
                reference=f"P-{n + 1:05d}",
                addressee_name=f"{given} {family}" if english else f"{family} {given}",
                address_lines=(postcode, street, f"ハイツ{rng.randint(101, 909)}号室"),
                sender_lines=SENDER,
                purpose=PURPOSE_EN if english else PURPOSE_JA,
                deadline=date(2027, 1, 15),
                # A link as fieldwork issues them: the site's address and a 32-character
                # token (24 random bytes, URL-safe base64).
                link=f"https://hyoka.example.jp/s/{secrets.token_urlsafe(24)}",
                language="en" if english else "ja",
                dated=date(2026, 12, 4),
            )
        )
    return letters


def timed(work: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = work()
    return result, time.perf_counter() - wall, cpu_seconds() - cpu


def verdict(ok: bool) -> str:
    return "ok" if ok else "FAIL"


def reference(letters: list[Any], keep: Path) -> None:
    from fieldwork.letters import render_letters

    batch = letters[:REFERENCE_COUNT]
    pdf, wall, cpu = timed(lambda: render_letters(batch))
    (keep / "letters-352.pdf").write_bytes(pdf)
    print(
        f"  {len(batch)} letters as one PDF: {wall:.2f} s wall, {cpu:.2f} s CPU, "
        f"{len(batch) / wall:.1f} letters/s, {len(pdf) / 1e6:.2f} MB "
        f"[target < {TARGET_REFERENCE_SECONDS:.0f} s: {verdict(wall < TARGET_REFERENCE_SECONDS)}]"
    )


def batched(letters: list[Any], *, batch: int, workers: int, keep: Path) -> float:
    from fieldwork.letters import render_letters_batched

    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        elapsed = time.perf_counter() - started
        print(
            f"    {done:>6}/{total} letters, {elapsed:7.1f} s, {done / elapsed:5.1f}/s", flush=True
        )

    pdfs, wall, cpu = timed(
        lambda: list(
            render_letters_batched(letters, batch_size=batch, on_progress=progress, workers=workers)
        )
    )
    rate = len(letters) / wall
    print(
        f"  {len(letters)} letters, {workers} process(es), batches of {batch}: {wall:.1f} s wall, "
        f"{cpu:.1f} s CPU ({1000 * cpu / len(letters):.0f} ms CPU a letter), {rate:.1f} letters/s "
        f"[target >= {TARGET_RATE:.0f}/s: {verdict(rate >= TARGET_RATE)}]"
    )
    from pypdf import PdfWriter

    def merge() -> int:
        writer = PdfWriter()
        for pdf in pdfs:
            writer.append(io.BytesIO(pdf))
        out = keep / f"letters-{len(letters)}-{workers}.pdf"
        with out.open("wb") as f:
            writer.write(f)
        return out.stat().st_size

    size, merge_wall, _ = timed(merge)
    print(
        f"  concatenated into one PDF with pypdf: {merge_wall:.1f} s more, {size / 1e6:.1f} MB "
        f"({len(letters) / (wall + merge_wall):.1f} letters/s including it)"
    )
    return rate


def stages(letters: list[Any]) -> None:
    import segno
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas

    from fieldwork.letters import layout, render

    today = date(2026, 12, 4)
    cpu0 = time.process_time()
    for letter in letters:
        segno.make(letter.link, error="m", micro=False, boost_error=False)
    cpu1 = time.process_time()
    canvas = Canvas(
        io.BytesIO(),
        pagesize=(layout.PAGE_WIDTH * mm, layout.PAGE_HEIGHT * mm),
        pageCompression=1,
        invariant=1,
        initialFontName=render.TEXT_FONT,
    )
    sheet = render.Sheet(canvas)
    for letter in letters:
        sheet.letter(render.page(letter, today))
    cpu2 = time.process_time()
    canvas.save()
    cpu3 = time.process_time()
    each = 1000 / len(letters)
    segno_ms = each * (cpu1 - cpu0)
    print(
        f"  QR codes (segno) {segno_ms:4.1f}, the rest of the drawing "
        f"{each * (cpu2 - cpu1) - segno_ms:4.1f}, PDF output (fonts subset, streams "
        f"compressed) {each * (cpu3 - cpu2):4.1f}, total "
        f"{each * (cpu3 - cpu1):4.1f} ms CPU a letter"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--keep", type=Path, help="write the PDFs here (default: a temp dir)")
    parser.add_argument("--skip-serial", action="store_true", help="batches in workers only")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hyoka-bench-letters-") as tmp:
        keep = args.keep or Path(tmp)
        keep.mkdir(parents=True, exist_ok=True)
        harness.setup_django(harness.embedded_environment(f"sqlite:///{tmp}/unused.sqlite3"))
        letters = build(max(args.count, REFERENCE_COUNT))
        from fieldwork.letters import render_letters

        render_letters(letters[:2])  # warm-up: imports, template, fonts
        print(f"Letters on {os.cpu_count()} cores")
        harness.idle_warning("measuring", "wall times are longer than on an idle machine")
        print("The reference study's letters:")
        reference(letters, keep)
        print(f"{args.count} letters in batches:")
        rates = {}
        if not args.skip_serial:
            rates[1] = batched(letters[: args.count], batch=args.batch, workers=1, keep=keep)
        if args.workers > 1:
            rates[args.workers] = batched(
                letters[: args.count], batch=args.batch, workers=args.workers, keep=keep
            )
        if 1 in rates and args.workers in rates and args.workers > 1:
            speedup = harness.ratio(rates[args.workers], rates[1])
            print(f"  {args.workers} processes against 1: {speedup}")
        print("Where the time goes (50 letters, one document):")
        stages(letters[:50])
        if args.keep:
            print(f"PDFs kept in {keep}")


if __name__ == "__main__":
    main()
