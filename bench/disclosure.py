"""Small-cell protection (kpi/scoring/disclosure.py): how long protecting takes, against
a baseline of the same run.

    .venv/bin/python bench/disclosure.py                # 50 sites × 10 choices
    .venv/bin/python bench/disclosure.py --sites 100 --repeat 5

Pure: no database. Three cases, each timed over ``--repeat`` runs (the median):

- a cross-tab of a single-choice question with 10 choices over 50 sites of realistic
  sizes (20 to 400 respondents each), and the same over 50 sites of which many are tiny
  (0 to 80: most cells small, the hard case);
- the per-site KPI tables of a 50-site study (12 KPIs: shares over all respondents and
  over a group, a mean, a ratio).

The baseline is what the cross-tab page computes for the same table besides the counts:
each cell's share and Wilson interval (``crosstab._cell``). OpenBLAS's threads are set
to one before numpy loads (``--blas-threads`` to change): on a shared, loaded machine its
default threads made the same SVDs thirty times slower.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--choices", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--blas-threads", default="1")
    args = parser.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", args.blas_threads)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from kpi.scoring import crosstab, disclosure

    rng = random.Random(args.seed)
    codes = [f"c{i}" for i in range(args.choices)]

    def columns(sizes: list[int]) -> tuple[list, object]:
        cols = []
        for i, size in enumerate(sizes):
            weights = [rng.random() ** 2 for _ in codes]
            chosen = dict.fromkeys(codes, 0)
            for _ in range(size):
                chosen[rng.choices(codes, weights)[0]] += 1
            cols.append(disclosure.CrossColumn(f"s{i:03d}", f"s{i:03d}", size, 0, 0, chosen))
        total = disclosure.CrossColumn(
            "_total",
            None,
            sum(c.answered for c in cols),
            0,
            0,
            {code: sum(c.chosen[code] for c in cols) for code in codes},
        )
        return cols, total

    def timed(fn) -> float:
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    realistic = columns([rng.randint(20, 400) for _ in range(args.sites)])
    tiny = columns([rng.choice([0, 1, 3, 6, 10, 30, 80]) for _ in range(args.sites)])

    def baseline(cols, total) -> None:
        for c in [*cols, total]:
            for code in codes:
                crosstab._cell(c.chosen[code], c.answered, 0.95)

    rows = kpi_rows(rng, args.sites)
    cases = [
        ("baseline: shares and Wilson intervals, realistic", lambda: baseline(*realistic)),
        (
            "cross-tab, realistic sites (20-400)",
            lambda: disclosure.protect_crosstab(*realistic, args.k, conditional=False),
        ),
        (
            "cross-tab, tiny sites (0-80)",
            lambda: disclosure.protect_crosstab(*tiny, args.k, conditional=False),
        ),
        ("per-site KPI tables (12 KPIs)", lambda: disclosure.protect_results(rows, args.k)),
    ]
    print(f"{args.sites} sites × {args.choices} choices, k = {args.k}, median of {args.repeat}")
    base = None
    for name, fn in cases:
        seconds = timed(fn)
        base = base or seconds
        print(f"  {name:50} {seconds * 1000:9.1f} ms  ×{seconds / base:8.1f}")
    for label, (cols, total) in (("realistic", realistic), ("tiny", tiny)):
        p = disclosure.protect_crosstab(cols, total, args.k, conditional=False)
        shown = [k for k in p.primary | p.secondary if k[0] == "chosen"]
        print(
            f"  {label}: {len([k for k in p.primary if k[0] == 'chosen'])} small cells, "
            f"{len([k for k in p.secondary if k[0] == 'chosen'])} more withheld, "
            f"{len(shown)} of {len(cols) * len(codes)} choice cells; blanked {len(p.blanked)}"
        )


def kpi_rows(rng: random.Random, n_sites: int) -> list[dict]:
    """Result rows as a run stores them: 12 KPIs over ``n_sites`` sites and the study."""
    sites = [f"s{i:03d}" for i in range(n_sites)]
    respondents = {s: rng.randint(5, 300) for s in sites}
    rows = []
    for j in range(12):
        kind = ["share"] * 9 + ["mean", "ratio", "share"]
        kind_j = kind[j]
        per_site = {}
        for s in sites:
            d = respondents[s] if j % 3 == 0 else rng.randint(0, respondents[s])
            n = rng.randint(0, d) if kind_j != "mean" else rng.randint(0, 5 * d)
            per_site[s] = (n, d)
        study = tuple(map(sum, zip(*per_site.values(), strict=True)))
        for site, (n, d) in [*per_site.items(), (None, study)]:
            rows.append(
                {
                    "kpi_code": f"k{j}",
                    "site_code": site,
                    "kind": kind_j,
                    "numerator": n,
                    "denominator": d,
                    "overlap": min(n, d) // 2 if kind_j == "ratio" else None,
                    "respondents": sum(respondents.values()) if site is None else respondents[site],
                }
            )
    return rows


if __name__ == "__main__":
    main()
