"""A study at national scale, built fast: the reference instrument, 50 sites, the reference
KPIs, N participants and N submitted responses with random but valid answers, written
with COPY. Shared by ``bench/score.py`` (scoring) and ``bench/admin.py`` (the manager's
pages and API at 1,000,000).

Each build empties the participant, response and answer tables first (each size is
measured alone) and leaves the tables vacuumed and analysed.
"""

from __future__ import annotations

import hashlib
import io
import random
import time
from dataclasses import dataclass
from typing import Any, cast

from bench.harness import CHANNEL_P, SINGLE_WEIGHTS, UNDERSTOOD_WEIGHTS

SITES = 50
CHUNK = 50_000  # responses generated and copied at a time: bounds this process's memory
NONE_SHARE = 0.05  # respondents who tick only "none", besides those who tick nothing else
TIMESTAMP = "2021-10-15 09:00:00+09"  # every participant and response; long before now
DATA_TABLES = ("surveys_answer", "surveys_response", "surveys_participant")

# --- Building a study -------------------------------------------------------------------


@dataclass
class Built:
    size: int
    study_id: int
    instrument_id: int
    site_ids: list[int]
    masks: dict[str, int]  # hand-written bit masks of the baseline (a)
    choice_ids: dict[str, list[int]]  # the same sets as choice ids, for baseline (b)
    answers: int
    seconds: float
    phases: dict[str, float]


def _answer_tables(
    choices: dict[str, dict[str, Any]], bit_of: dict[int, int]
) -> tuple[list[tuple[int, list[str], bool]], list[float], dict[str, list[tuple[int, str]]]]:
    """What one response can answer, with its bits and its answer rows' tails.

    Channels: every set of ticked channels as (bits, answer-row tails, ticks an online
    channel) with its probability; index 0 is "none" alone. Singles: per question (and
    ``understood``), every choice as (bit, answer-row tail)."""

    def tail(question: str, code: str) -> str:
        c = choices[question][code]
        return f"\t{c.question_id}\t{c.pk}\n"

    def bit(question: str, code: str) -> int:
        return 1 << bit_of[choices[question][code].pk]

    codes = list(CHANNEL_P)
    online = {c for c, ch in choices["channels"].items() if "online" in ch.tags}
    nothing = 1.0
    for p in CHANNEL_P.values():
        nothing *= 1 - p
    sets = [(bit("channels", "none"), [tail("channels", "none")], False)]
    weights = [NONE_SHARE + (1 - NONE_SHARE) * nothing]
    for m in range(1, 1 << len(codes)):
        ticked = [c for i, c in enumerate(codes) if m >> i & 1]
        weight = 1 - NONE_SHARE
        for i, p in enumerate(CHANNEL_P.values()):
            weight *= p if m >> i & 1 else 1 - p
        bits = 0
        for c in ticked:
            bits |= bit("channels", c)
        sets.append((bits, [tail("channels", c) for c in ticked], bool(online & set(ticked))))
        weights.append(weight)
    singles = {
        q: [(bit(q, c), tail(q, c)) for c in w]
        for q, w in [*SINGLE_WEIGHTS.items(), ("understood", UNDERSTOOD_WEIGHTS)]
    }
    return sets, weights, singles


def build(size: int, rng: random.Random) -> Built:
    from django.db import connection, transaction

    from kpi.definitions.loading import kpis_path, load_kpis
    from surveys import appendonly
    from surveys.answers import InstrumentForm
    from surveys.models import Site, Study
    from tests.factories import SiteFactory, StudyFactory, reference_instrument

    started = time.perf_counter()
    phases = {"COPY": 0.0}
    answers = 0
    # One transaction: the tables are emptied in it, so COPY may write frozen rows.
    with transaction.atomic(), connection.cursor() as cursor:
        # Each size is measured alone; the results of earlier sizes' runs stay.
        # With the erasure records (none here), whose foreign key would refuse it otherwise;
        # they are append-only, so past their trigger as the test suite's flush does.
        before, after = appendonly.flush_sql(connection)
        for statement in before:
            cursor.execute(statement)
        # Every table that refers to them (links, link openings, fieldwork's contacts and
        # deliveries, erasure records) is emptied with them: CASCADE, so that a table
        # added later does not break the bench.
        cursor.execute(f"TRUNCATE {', '.join(DATA_TABLES)} RESTART IDENTITY CASCADE")
        for statement in after:
            cursor.execute(statement)
        # Secondary indexes are dropped and built again after the COPY, several times
        # faster than maintaining them row by row; the constraints' indexes stay.
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = ANY(%s) AND indexname NOT IN (SELECT conname FROM pg_constraint)",
            [list(DATA_TABLES)],
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        study = cast(Study, StudyFactory(code=f"bench-{size}"))
        instrument = reference_instrument(study)
        sites = [cast(Site, SiteFactory(study=study, code=f"site-{k:02d}")) for k in range(SITES)]
        path = kpis_path()
        assert path is not None
        load_kpis(study=study, path=path)
        form = InstrumentForm.load(instrument)
        choices = form.choices  # question code -> choice code -> Choice
        site_ids = [s.pk for s in sites]
        site_weights = [rng.uniform(0.5, 1.5) for _ in site_ids]
        channel_sets, channel_weights, singles = _answer_tables(choices, form.bit_of)
        asked = [(singles[q], list(w.values())) for q, w in SINGLE_WEIGHTS.items()]
        understood = singles["understood"], list(UNDERSTOOD_WEIGHTS.values())
        phases["set-up"] = time.perf_counter() - started

        # The rows are valid by construction (and every count is checked below); the
        # foreign keys' deferred checks of millions of rows would dominate the build.
        cursor.execute("SET LOCAL session_replication_role = replica")
        pg = cursor.cursor  # psycopg's own cursor, for COPY
        for start in range(0, size, CHUNK):
            n = min(CHUNK, size - start)
            site_of = rng.choices(site_ids, site_weights, k=n)
            channel_of = rng.choices(channel_sets, channel_weights, k=n)
            picks = [rng.choices(options, weights, k=n) for options, weights in asked]
            understood_of = rng.choices(*understood, k=n)
            participants, responses, rows = io.StringIO(), io.StringIO(), io.StringIO()
            for i in range(n):
                ident = start + i + 1  # participant and response ids: 1..N (tables restarted)
                site = site_of[i]
                token_hash = hashlib.sha256(f"bench-{study.pk}-{ident}".encode()).hexdigest()
                participants.write(
                    f"{ident}\t{site}\tB{ident:07d}\tactive\t{token_hash}\t"
                    f"{TIMESTAMP}\t{TIMESTAMP}\t{TIMESTAMP}\n"
                )
                bits, tails, online = channel_of[i]
                tails = list(tails)
                for pick in picks:
                    bits |= pick[i][0]
                    tails.append(pick[i][1])
                if online:  # "understood" is shown only to users of an online channel
                    bits |= understood_of[i][0]
                    tails.append(understood_of[i][1])
                responses.write(
                    f"{ident}\t{ident}\t{instrument.pk}\t{site}\tsubmitted\t{bits}\tja\timport\t"
                    f"{TIMESTAMP}\t{TIMESTAMP}\t{TIMESTAMP}\n"
                )
                prefix = str(ident)
                rows.write("".join([prefix + tail for tail in tails]))
                answers += len(tails)
            copying = time.perf_counter()
            for table, columns, buffer in (
                (
                    "surveys_participant",
                    "id, site_id, reference, status, token_hash, token_issued_at, "
                    "invited_at, created_at",
                    participants,
                ),
                (
                    "surveys_response",
                    "id, participant_id, instrument_id, site_id, status, choice_bits, "
                    "language, source, started_at, updated_at, submitted_at",
                    responses,
                ),
                ("surveys_answer", "response_id, question_id, choice_id", rows),
            ):
                with pg.copy(f"COPY {table} ({columns}) FROM STDIN (FREEZE)") as copy:
                    copy.write(buffer.getvalue())
            phases["COPY"] += time.perf_counter() - copying
        for table in ("surveys_participant", "surveys_response"):
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [table, max(size, 1)]
            )
        indexing = time.perf_counter()
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        for _, definition in indexes:
            cursor.execute(definition)
        phases["indexes"] = time.perf_counter() - indexing
        committing = time.perf_counter()
    phases["commit"] = time.perf_counter() - committing
    vacuuming = time.perf_counter()
    with connection.cursor() as cursor:
        for table in DATA_TABLES:
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    phases["VACUUM ANALYZE"] = time.perf_counter() - vacuuming
    phases["generating"] = time.perf_counter() - started - sum(phases.values())

    # The baselines' sets, written out by hand from the instrument's codes and tags.
    def ids(question: str, codes: list[str] | None = None, tag: str = "") -> list[int]:
        return [
            c.pk
            for c in choices[question].values()
            if (codes is not None and c.code in codes) or (tag and tag in c.tags)
        ]

    top_two = ["agree", "somewhat_agree"]
    choice_ids = {
        "online": ids("channels", tag="online"),
        "municipal": ids("channels", tag="municipal"),
        "reassured": ids("reassured", top_two),
        "continue": ids("continue", top_two),
        "reuse": ids("reuse", top_two),
        "understood": ids("understood", ["fully", "fairly"]),
        "line": ids("tool", ["line"]),
    }
    masks = {name: sum(1 << form.bit_of[pk] for pk in pks) for name, pks in choice_ids.items()}
    return Built(
        size=size,
        study_id=study.pk,
        instrument_id=instrument.pk,
        site_ids=site_ids,
        masks=masks,
        choice_ids=choice_ids,
        answers=answers,
        seconds=time.perf_counter() - started,
        phases=phases,
    )
