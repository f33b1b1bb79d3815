"""Submission throughput of the web questionnaire, end to end, on this machine.

    .venv/bin/python bench/submit.py [--participants 4000] [--concurrency 32] [--keep]

1. (Re)creates the PostgreSQL database ``hyoka_bench`` on 127.0.0.1, migrates it, loads the
   reference study and creates the participants with ``participant_create`` (their plain
   tokens stay in this process's memory only).
2. Starts gunicorn (``config.wsgi``) in production mode with bench-only secrets on a free
   port of 127.0.0.1.
3. Runs C concurrent clients (asyncio, keep-alive HTTP/1.1) in two phases: every
   participant opens their link (GET: the form and its CSRF token), then every participant
   submits a complete questionnaire, through the form (``action=submit``) or, for a share
   of them, through the API with an Idempotency-Key. Some send it twice at once: a double
   tap on the form (303 + 409 expected), a retry with the same key (201 + 200 expected).
4. Prints the rate, latencies and CPU of each phase, then checks the database: every
   accepted submission (303 or 201) is stored exactly once, and nothing else is. Exits
   non-zero on any loss, duplicate, double tap or retry answered otherwise, 5xx or client
   error. The database is dropped at the end (``--keep`` keeps it), as the other benches'
   are: the suite's load test (tests/test_load.py) left one per test database behind.

Production sits behind a TLS-terminating proxy that sets ``X-Forwarded-Proto: https``; the
clients send that header, so Django treats each request as HTTPS (no SSL redirect, CSRF
checks the ``https://`` Origin), and they send the ``Secure`` CSRF cookie back as a browser
does over HTTPS. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:  # ``python bench/submit.py`` puts bench/ first, not the project
    sys.path.insert(0, str(BASE_DIR))

from bench import harness  # noqa: E402
from bench.harness import HOST, ServerSpec  # noqa: E402

DB_NAME = "hyoka_bench"  # --database changes it
BROKER = f"redis://{HOST}:6379/15"  # a Redis database of the bench's own, flushed each run
TARGET_RATE = 400  # accepted submissions per second
TARGET_P99 = 0.150  # seconds, submit POST
DEFAULT_SERVERS = ["gthread:2x4"]  # measured best on 2 cores: see bench/README.md

CSRF_FIELD = re.compile(rb'name="csrfmiddlewaretoken"\s+value="([^"]+)"')

# The reference questionnaire's codes (DESIGN.md): answers are random but always valid.
CHANNELS = ["anytime", "night", "midwife_chat", "ward_phone", "ward_desk"]
CHANNELS += ["articles", "live", "home_visit", "checkup"]
ONLINE = {"anytime", "night", "midwife_chat"}
AGREEMENT = ["agree", "somewhat_agree", "somewhat_disagree", "disagree"]
UNDERSTANDING = ["fully", "fairly", "not_very", "not_at_all"]
TOOLS = ["line", "phone", "face_to_face", "email", "other_sns", "other"]


# --- Set-up -----------------------------------------------------------------------------


def flush_broker() -> None:
    import redis

    redis.Redis.from_url(BROKER).flushdb()


def prepare(participants: int) -> list[str]:
    """A fresh database with the reference study and ``participants`` participants at its
    open sites; returns their plain tokens."""
    from django.db import connections, transaction

    connections.close_all()
    harness.recreate_database(DB_NAME)
    flush_broker()
    harness.migrate()

    from surveys.loading import load_study
    from surveys.services import participant_create

    study = load_study()
    sites = [site for site in study.sites.order_by("code") if site.is_survey_open()]
    assert sites, "the reference study has no open site"
    with transaction.atomic():
        tokens = [
            participant_create(site=sites[i % len(sites)], reference=f"BENCH-{i:06d}").token
            for i in range(participants)
        ]
    connections.close_all()
    return tokens


# --- The server -------------------------------------------------------------------------


def start_py_spy(output: Path, pid: int) -> subprocess.Popen:
    """Sample gunicorn's workers (py-spy from PyPI, in the venv) while the load runs."""
    py_spy = Path(sys.executable).with_name("py-spy")
    if not py_spy.exists():
        raise SystemExit("--py-spy needs py-spy: .venv/bin/pip install py-spy")
    command = [str(py_spy), "record", f"--pid={pid}", "--subprocesses", "--nonblocking"]
    command += ["--rate=200", "--gil", "--format=raw", f"--output={output}"]
    profiler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)  # attached to every worker before the measured phase starts
    return profiler


SHARED_POSTGRES_PROCESSES = ("walwriter", "checkpointer", "background writer")


class PostgresCpu:
    """CPU seconds used by the bench database's backends and PostgreSQL's background
    processes while it runs. Backends come and go (``CONN_MAX_AGE`` closes them), so
    /proc is sampled every half second: a new process counts from zero, one that ended
    loses at most its last half second."""

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}
        self.total = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _ours(pid: str) -> bool:
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":
                return False
            title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False
        # Our backends name our database; of the shared processes, those that write WAL
        # and pages for every database count too (not other databases' parallel workers).
        return DB_NAME in title or any(p in title for p in SHARED_POSTGRES_PROCESSES)

    def sample(self) -> None:
        ticks = os.sysconf("SC_CLK_TCK")
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or not self._ours(entry):
                continue
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            used = (int(fields[11]) + int(fields[12])) / ticks
            pid = int(entry)
            if pid in self.seen:
                self.total += used - self.seen[pid]
            elif self.seen:  # born during the measurement
                self.total += used
            self.seen[pid] = used

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.sample()

    def __enter__(self) -> PostgresCpu:
        self.sample()
        self.total = 0.0
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


# --- The load ---------------------------------------------------------------------------


def random_answers(rng: random.Random) -> list[tuple[str, str]]:
    """A complete, valid questionnaire as form fields."""
    if rng.random() < 0.1:
        channels = ["none"]
    else:
        channels = rng.sample(CHANNELS, rng.choice([1, 1, 2, 2, 3, 4]))
    fields = [("channels", code) for code in channels]
    fields += [(code, rng.choice(AGREEMENT)) for code in ("reassured", "continue", "reuse")]
    if ONLINE & set(channels):
        fields.append(("understood", rng.choice(UNDERSTANDING)))
    fields.append(("tool", rng.choice(TOOLS)))
    return fields


class Client:
    """One keep-alive HTTP/1.1 connection, as a phone's browser keeps one open.

    Deliberately small (asyncio streams, requests written as bytes): on two shared cores
    the load generator's own CPU is taken from the server, and aiohttp spent 1 to 2 ms per
    request where this spends a fraction of that."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, dict[bytes, list[bytes]], bytes]:
        reused = self.writer is not None
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        assert self.reader is not None and self.writer is not None
        self.writer.write(raw)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if not reused or exc.partial:
                raise
            # The server had closed this idle keep-alive connection (gunicorn's
            # --keep-alive) before reading the request: a browser sends it again on a new
            # connection, and so do we.
            await self.close()
            return await self.request(raw)
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers: dict[bytes, list[bytes]] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(b":")
                headers.setdefault(name.strip().lower(), []).append(value.strip())
        keep = True
        if b"content-length" in headers:
            body = await self.reader.readexactly(int(headers[b"content-length"][0]))
        elif headers.get(b"transfer-encoding", [b""])[0].lower() == b"chunked":
            body = await self._chunked()
        else:  # the body ends when the server closes the connection
            body, keep = await self.reader.read(), False
        if not keep or headers.get(b"connection", [b""])[0].lower() == b"close":
            await self.close()
        return status, headers, body

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append(await self.reader.readexactly(size + 2))
            if size == 0:
                return b"".join(parts)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


def http_request(
    method: str, origin: str, path: str, headers: dict[str, str], body: bytes = b""
) -> bytes:
    """A request as bytes; the Host header is the origin's host and port, as a browser
    sends it (Django's CSRF check compares it with the Origin header)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {origin.split('://', 1)[1]}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if method != "GET":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class Participant:
    """What the bench knows of one participant: their token, how they will submit, and
    what the form they opened gave them."""

    token: str
    double: bool = False  # sends the submit POST twice at once (a double tap)
    api: bool = False  # submits through the API instead of the web form
    draft: bool = False  # the page's JavaScript autosaved the answers before the submit
    cookie: str = ""
    csrf: str = ""
    answers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Tally:
    get_latency: list[float] = field(default_factory=list)
    post_latency: list[float] = field(default_factory=list)
    get_status: Counter[int] = field(default_factory=Counter)
    post_status: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    accepted: list[str] = field(default_factory=list)  # a token per accepted submission
    answer_rows: int = 0  # Answer rows the accepted submissions should have stored
    doubles: int = 0
    doubles_wrong: list[tuple[int, ...]] = field(default_factory=list)
    retries: int = 0  # API submissions retried at once with the same Idempotency-Key
    retries_wrong: list[tuple[int, ...]] = field(default_factory=list)
    participants: int = 0
    wall: float = 0.0

    @property
    def submissions(self) -> int:
        """Accepted submissions: 303 from the form, 201 from the API."""
        return self.post_status[303] + self.post_status[201]


Step = Callable[[list["Client"], "Participant"], Awaitable[None]]

PROXY = {"X-Forwarded-Proto": "https"}  # what the TLS proxy adds (see the docstring)


async def open_form(client: Client, who: Participant, origin: str, tally: Tally) -> None:
    """A participant opens their link: the form, its CSRF cookie and token."""
    tally.participants += 1
    started = time.perf_counter()
    try:
        status, headers, html = await client.request(
            http_request("GET", origin, f"/r/{who.token}/", PROXY)
        )
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        tally.errors[f"GET {type(exc).__name__}"] += 1
        await client.close()
        return
    tally.get_latency.append(time.perf_counter() - started)
    tally.get_status[status] += 1
    if status != 200:
        return
    csrf = CSRF_FIELD.search(html)
    if csrf is None:
        tally.errors["form without csrfmiddlewaretoken"] += 1
        return
    who.csrf = csrf.group(1).decode()
    who.cookie = "; ".join(c.split(b";", 1)[0].decode() for c in headers.get(b"set-cookie", []))


def _form_headers(who: Participant, origin: str, **extra: str) -> dict[str, str]:
    """A browser's form post behind the TLS proxy: its cookie, Origin and Referer."""
    return {
        **PROXY,
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": who.cookie,
        "Origin": origin,
        "Referer": f"{origin}/r/{who.token}/",
        **extra,
    }


def _form_post(who: Participant, origin: str) -> bytes:
    body = urllib.parse.urlencode(
        [("csrfmiddlewaretoken", who.csrf), ("action", "submit"), *who.answers]
    ).encode()
    return http_request("POST", origin, f"/r/{who.token}/", _form_headers(who, origin), body)


def _draft_post(who: Participant, origin: str) -> bytes:
    """What the page's JavaScript sends 1.5 s after the last change: the form as it stands,
    ``action=save``, asking for JSON."""
    body = urllib.parse.urlencode(
        [("csrfmiddlewaretoken", who.csrf), ("action", "save"), *who.answers]
    ).encode()
    headers = _form_headers(who, origin, Accept="application/json", **{"X-CSRFToken": who.csrf})
    return http_request("POST", origin, f"/r/{who.token}/", headers, body)


async def save_draft(client: Client, who: Participant, origin: str, tally: Tally) -> None:
    tally.participants += 1
    started = time.perf_counter()
    try:
        status, _, body = await client.request(_draft_post(who, origin))
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        tally.errors[f"draft {type(exc).__name__}"] += 1
        await client.close()
        return
    tally.post_latency.append(time.perf_counter() - started)
    tally.post_status[status] += 1
    if status != 200 or b'"saved": true' not in body:
        tally.errors[f"draft not saved: {status}"] += 1


def _api_post(who: Participant, origin: str) -> bytes:
    answers: dict[str, object] = {}
    for code, value in who.answers:
        if code == "channels":
            answers.setdefault(code, []).append(value)  # type: ignore[union-attr]
        else:
            answers[code] = value
    body = json.dumps({"answers": answers}).encode()
    headers = {
        **PROXY,
        "Content-Type": "application/json",
        "Idempotency-Key": f"bench-{who.token[:16]}",
    }
    path = f"/api/v1/invitations/{who.token}/submission/"
    return http_request("POST", origin, path, headers, body)


async def submit(clients: list[Client], who: Participant, origin: str, tally: Tally) -> None:
    """The participant submits: once, or twice at once (a double tap on the form, or an API
    client retrying with the same Idempotency-Key before the first answer came back)."""
    raw = _api_post(who, origin) if who.api else _form_post(who, origin)

    async def one(client: Client) -> int:
        started = time.perf_counter()
        try:
            status, _, _ = await client.request(raw)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            tally.errors[f"POST {type(exc).__name__}"] += 1
            await client.close()
            return 0
        tally.post_latency.append(time.perf_counter() - started)
        tally.post_status[status] += 1
        if status in (201, 303):
            tally.accepted.append(who.token)
            tally.answer_rows += len(who.answers)
        return status

    if not who.double:
        await one(clients[0])
        return
    statuses = tuple(sorted(await asyncio.gather(one(clients[0]), one(clients[1]))))
    if who.api:  # the retry gets the first one's response back: 200 (replayed) + 201
        tally.retries += 1
        if statuses != (200, 201):
            tally.retries_wrong.append(statuses)
    else:
        tally.doubles += 1
        if statuses != (303, 409):
            tally.doubles_wrong.append(statuses)


async def run_phase(
    work: list[Participant], args: argparse.Namespace, port: int, step: Step
) -> float:
    """``--concurrency`` clients take the next participant until none is left (or the time is
    up) and do ``step`` for each; returns the wall time."""
    queue = iter(work)
    deadline = time.monotonic() + args.duration

    async def phone() -> None:
        clients = [Client(port), Client(port)]  # the second only for double taps
        try:
            while time.monotonic() < deadline:
                who = next(queue, None)
                if who is None:
                    return
                await step(clients, who)
        finally:
            for client in clients:
                await client.close()

    started = time.perf_counter()
    await asyncio.gather(*(phone() for _ in range(args.concurrency)))
    return time.perf_counter() - started


def participants_for(tokens: list[str], args: argparse.Namespace, seed: int) -> list[Participant]:
    rng = random.Random(seed)
    work = []
    for token in tokens:
        api = rng.random() < args.api_share
        double = rng.random() < (args.retry_share if api else args.double_share)
        draft = not api and rng.random() < args.draft_share
        answers = random_answers(rng)
        work.append(Participant(token, double=double, api=api, draft=draft, answers=answers))
    return work


# --- Figures ----------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


@dataclass
class Verdict:
    spec: ServerSpec
    rate: float
    post_p99: float
    ok: bool


def check_database(accepted: list[str], answer_rows: int) -> tuple[int, int, list[str]]:
    """(lost, duplicated, messages): accepted submissions against what the database holds."""
    from django.db import connections

    from surveys.models import Answer, Response, hash_token

    connections.close_all()
    stored = list(
        Response.objects.filter(status=Response.Status.SUBMITTED).values_list(
            "participant__token_hash", flat=True
        )
    )
    stored_rows = Answer.objects.filter(response__status=Response.Status.SUBMITTED).count()
    accepted_hashes = Counter(hash_token(t) for t in accepted)
    stored_hashes = Counter(stored)
    lost = sum(1 for h in accepted_hashes if h not in stored_hashes)
    twice_accepted = sum(n - 1 for n in accepted_hashes.values())
    stored_unaccepted = sum(1 for h in stored_hashes if h not in accepted_hashes)
    duplicated = twice_accepted + stored_unaccepted + max(0, stored_rows - answer_rows)
    messages = [
        f"  database: {len(stored)} submitted responses for {len(accepted)} accepted submissions"
        f" ({len(accepted_hashes)} participants); {stored_rows} answer rows"
        f" (expected {answer_rows})",
        f"  {lost} lost, {duplicated} duplicated"
        + (
            f" (accepted twice: {twice_accepted}; stored but never accepted: "
            f"{stored_unaccepted}; extra answer rows: {max(0, stored_rows - answer_rows)})"
            if duplicated
            else ""
        ),
    ]
    if stored_rows < answer_rows and not lost:
        messages.append(f"  MISSING answer rows: {answer_rows - stored_rows}")
        lost += 1
    connections.close_all()
    return lost, duplicated, messages


def latency_line(name: str, values: list[float]) -> str:
    return (
        f"  {name}: p50 {ms(percentile(values, 50))}  p95 {ms(percentile(values, 95))}"
        f"  p99 {ms(percentile(values, 99))}  max {ms(max(values, default=math.nan))}"
        f"  (n={len(values)})"
    )


def cpu_lines(cpu: dict[str, float], wall: float, per: int, what: str) -> list[str]:
    """CPU in cores during a phase, and per ``what`` (steadier than the rate when the
    machine is shared: it gives the rate these cores would allow if they did nothing else)."""
    own = {
        name: seconds / (per or 1)
        for name, seconds in cpu.items()
        if name not in {"anything else", STOLEN}
    }
    return [
        "  CPU in cores: "
        + ", ".join(f"{name} {seconds / wall:.2f}" for name, seconds in cpu.items())
        + f"; machine {sum(cpu.values()) / wall:.2f} of {os.cpu_count()}",
        f"  CPU per {what}: "
        + ", ".join(f"{name} {ms(seconds).strip()}" for name, seconds in own.items())
        + f"; ceiling on {os.cpu_count()} otherwise idle cores: "
        + f"{(os.cpu_count() or 1) / max(sum(own.values()), 1e-9):.0f}/s",
    ]


def report(phases: Phases) -> tuple[float, bool]:
    opened, drafted, submitted = phases.opened, phases.drafted, phases.submitted
    rate = submitted.submissions / submitted.wall if submitted.wall else 0.0
    opens = opened.get_status[200] / opened.wall if opened.wall else 0.0
    drafts = drafted.post_status[200] / drafted.wall if drafted.wall else 0.0
    server_errors = sum(
        n
        for s, n in (opened.get_status + drafted.post_status + submitted.post_status).items()
        if s >= 500
    )
    other = {
        s: n for s, n in submitted.post_status.items() if s not in {200, 201, 303, 409} and s < 500
    } | {f"GET {s}": n for s, n in opened.get_status.items() if s != 200}
    print(f"  opening the form: {opened.participants} participants in {opened.wall:.2f} s")
    print(f"  form pages/s: {opens:.1f}")
    print(latency_line("GET form   ", opened.get_latency))
    print("\n".join(cpu_lines(phases.open_cpu, opened.wall, opened.get_status[200], "form page")))
    if drafted.participants:
        print(f"  autosaving drafts: {drafted.participants} participants in {drafted.wall:.2f} s")
        print(f"  drafts/s: {drafts:.1f}")
        print(latency_line("draft POST ", drafted.post_latency))
        print(
            "\n".join(cpu_lines(phases.draft_cpu, drafted.wall, drafted.post_status[200], "draft"))
        )
    print(f"  submitting: {submitted.participants} participants in {submitted.wall:.2f} s")
    print(
        f"  submissions/s: {rate:.1f} (accepted submissions: form 303 + API 201, "
        "over the phase's wall time)"
    )
    print(latency_line("submit POST", submitted.post_latency))
    print(
        "\n".join(cpu_lines(phases.submit_cpu, submitted.wall, submitted.submissions, "submission"))
    )
    if opens and rate:
        share = len(drafted.post_latency) / max(submitted.participants, 1)
        per = 1 / opens + 1 / rate + (share / drafts if drafts else 0)
        print(
            f"  all in turn (each participant opening, autosaving as {share:.0%} do, then "
            f"submitting): {1 / per:.1f} participants/s"
        )
    print(
        f"  POST statuses: form accepted 303: {submitted.post_status[303]}, API accepted 201:"
        f" {submitted.post_status[201]}, API replayed 200: {submitted.post_status[200]},"
        f" duplicate 409: {submitted.post_status[409]}, other: {other or 0}, 5xx: {server_errors}"
    )
    print(
        f"  double taps: {submitted.doubles}, answered other than 303 + 409: "
        f"{len(submitted.doubles_wrong)} {submitted.doubles_wrong[:5] or ''}"
    )
    print(
        f"  API retries with the same Idempotency-Key: {submitted.retries}, answered other "
        f"than 201 + 200: {len(submitted.retries_wrong)} {submitted.retries_wrong[:5] or ''}"
    )
    errors = opened.errors + drafted.errors + submitted.errors
    if errors:
        print(f"  client errors: {dict(errors)}")
    bad = bool(
        server_errors or submitted.doubles_wrong or submitted.retries_wrong or errors or other
    )
    return rate, bad


@dataclass
class Phases:
    opened: Tally
    drafted: Tally
    submitted: Tally
    open_cpu: dict[str, float]
    draft_cpu: dict[str, float]
    submit_cpu: dict[str, float]


def run_phases(
    port: int,
    tokens: list[str],
    args: argparse.Namespace,
    seed: int,
    server_pid: int | None = None,
) -> Phases:
    """Three phases, as the load arrives in a real study: the participants open their
    links, the page's JavaScript autosaves the answers of most of them, then their
    submissions arrive. Returns the tallies of the form pages, the drafts and the
    submissions, each with its wall time, and with ``server_pid`` the CPU each phase
    used."""
    origin = f"https://{HOST}:{port}"  # what the browser sees, behind the TLS proxy
    work = participants_for(tokens, args, seed)
    opened, drafted, submitted = Tally(), Tally(), Tally()

    async def open_step(clients: list[Client], who: Participant) -> None:
        await open_form(clients[0], who, origin, opened)

    async def submit_step(clients: list[Client], who: Participant) -> None:
        await submit(clients, who, origin, submitted)

    def measuring() -> Measured | contextlib.nullcontext:
        return Measured(server_pid) if server_pid else contextlib.nullcontext()

    async def draft_step(clients: list[Client], who: Participant) -> None:
        await save_draft(clients[0], who, origin, drafted)

    with measuring() as open_cpu:
        opened.wall = asyncio.run(run_phase(work, args, port, open_step))
    ready = [who for who in work if who.csrf]
    with measuring() as draft_cpu:
        drafted.wall = asyncio.run(
            run_phase([who for who in ready if who.draft], args, port, draft_step)
        )
    submitted.participants = len(ready)
    with measuring() as submit_cpu:
        submitted.wall = asyncio.run(run_phase(ready, args, port, submit_step))
    return Phases(
        opened,
        drafted,
        submitted,
        getattr(open_cpu, "cpu", {}),
        getattr(draft_cpu, "cpu", {}),
        getattr(submit_cpu, "cpu", {}),
    )


STOLEN = "stolen by the hypervisor"


class Measured:
    """CPU seconds of gunicorn, PostgreSQL, the load generator and the rest of the machine
    over a block."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.cpu: dict[str, float] = {}

    def __enter__(self) -> Measured:
        self.server = harness.process_tree_cpu(self.server_pid)
        self.own = resource.getrusage(0)
        self.busy, _, self.stolen = harness.machine_cpu()
        self.db = PostgresCpu().__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.db.__exit__()
        busy, _, stolen = harness.machine_cpu()
        busy -= self.busy
        own = resource.getrusage(0)
        load_cpu = own.ru_utime + own.ru_stime - self.own.ru_utime - self.own.ru_stime
        server = harness.process_tree_cpu(self.server_pid) - self.server
        self.cpu = {
            "gunicorn": server,
            "PostgreSQL": self.db.total,
            "load generator": load_cpu,
            "anything else": busy - server - self.db.total - load_cpu,
            STOLEN: stolen - self.stolen,
        }


def run_one(args: argparse.Namespace, spec: ServerSpec, workdir: Path) -> Verdict:
    print(f"\n== gunicorn {spec}: {args.participants} participants, C={args.concurrency}")
    harness.idle_warning("the run", "the figures below will be lower")
    started = time.perf_counter()
    tokens = prepare(args.participants)
    print(f"  set-up: database, study and participants in {time.perf_counter() - started:.1f} s")
    port = harness.free_port()
    log = workdir / f"gunicorn-{spec}.log".replace(":", "-")
    server = harness.start_gunicorn(spec, args.env, port, log, args.wsgi)
    try:
        warmup, measured = tokens[: args.warmup], tokens[args.warmup :]
        first = run_phases(port, warmup, args, args.seed)
        profiler = start_py_spy(args.py_spy, server.pid) if args.py_spy else None
        phases = run_phases(port, measured, args, args.seed + 1, server_pid=server.pid)
        if profiler:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(60)
            print(f"  py-spy: collapsed stacks of the workers in {args.py_spy}")
    finally:
        harness.stop(server)
    rate, bad = report(phases)
    warm_statuses = (
        first.opened.get_status + first.drafted.post_status + first.submitted.post_status
    )
    warm_errors = first.opened.errors + first.drafted.errors + first.submitted.errors
    if (
        warm_errors
        or first.submitted.doubles_wrong
        or first.submitted.retries_wrong
        or (set(warm_statuses) - {200, 201, 303, 409})
    ):
        bad = True
        print(
            f"  warm-up: unexpected statuses {dict(warm_statuses)}, client errors "
            f"{dict(warm_errors)}, double taps answered {first.submitted.doubles_wrong}, "
            f"retries answered {first.submitted.retries_wrong}"
        )
    lost, duplicated, messages = check_database(
        first.submitted.accepted + phases.submitted.accepted,
        first.submitted.answer_rows + phases.submitted.answer_rows,
    )
    print("\n".join(messages))
    logged = log.read_text(errors="replace")
    if "Traceback" in logged:
        bad = True
        print("  gunicorn logged errors (last 40 lines):\n" + "\n".join(logged.splitlines()[-40:]))
    p99 = percentile(phases.submitted.post_latency, 99)
    met = rate >= TARGET_RATE and p99 <= TARGET_P99
    print(
        f"  target ({TARGET_RATE} submissions/s at submit p99 <= {TARGET_P99 * 1000:.0f} ms): "
        + ("met" if met else "NOT met")
    )
    return Verdict(spec, rate, p99, ok=not (bad or lost or duplicated))


def main(argv: list[str] | None = None) -> int:
    global DB_NAME  # read by the set-up, the server's environment and the CPU sampler
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--participants", type=int, default=4000, help="default 4000")
    parser.add_argument("--concurrency", type=int, default=32, help="clients; default 32")
    parser.add_argument(
        "--duration", type=float, default=120, help="longest measured phase, s; default 120"
    )
    parser.add_argument(
        "--warmup", type=int, default=200, help="participants before measuring; default 200"
    )
    parser.add_argument(
        "--double-share",
        type=float,
        default=0.02,
        help="share of participants who send their submit POST twice at once; default 0.02",
    )
    parser.add_argument(
        "--draft-share",
        type=float,
        default=0.8,
        help="share of the web form's participants whose answers the page's JavaScript "
        "autosaved before they submit; default 0.8",
    )
    parser.add_argument(
        "--api-share",
        type=float,
        default=0.05,
        help="share of participants who submit through the API; default 0.05",
    )
    parser.add_argument(
        "--retry-share",
        type=float,
        default=0.2,
        help="share of API submissions retried at once with the same Idempotency-Key; default 0.2",
    )
    parser.add_argument(
        "--server",
        type=ServerSpec.parse,
        action="append",
        help="gunicorn worker model, e.g. sync:5 or gthread:2x8; repeat to compare "
        f"(each on a fresh database); default {' '.join(DEFAULT_SERVERS)}",
    )
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument(
        "--database",
        default=DB_NAME,
        help="the PostgreSQL database to (re)create and use; default %(default)s",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the database afterwards (dropped by default)"
    )
    parser.add_argument(
        "--wsgi",
        default="config.wsgi:application",
        help="the WSGI application gunicorn serves (another one measures a prototype "
        "without editing the project; PYTHONPATH is passed on); default %(default)s",
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="FILE",
        help="sample the workers with py-spy during the measured phase (collapsed stacks)",
    )
    args = parser.parse_args(argv)
    DB_NAME = args.database
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    if args.participants <= args.warmup:
        parser.error("--participants must be larger than --warmup")
    specs = args.server or [ServerSpec.parse(s) for s in DEFAULT_SERVERS]

    with tempfile.TemporaryDirectory(prefix="hyoka-bench-") as tmp:
        workdir = Path(tmp)
        args.env = harness.production_environment(
            database=harness.database_url(DB_NAME),
            broker=BROKER,
            static_root=workdir / "static",
            signing=harness.signing_certificate(workdir),
        )
        harness.setup_django(args.env)
        harness.collect_static()
        verdicts = []
        try:
            for spec in specs:
                verdicts.append(run_one(args, spec, workdir))
        finally:
            flush_broker()
            if not args.keep:
                harness.drop_database(DB_NAME)
        if len(verdicts) > 1:
            print("\n== summary")
            for v in verdicts:
                print(f"  {v.spec!s:14} {v.rate:7.1f} submissions/s  submit p99 {ms(v.post_p99)}")
    return 0 if all(v.ok for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
