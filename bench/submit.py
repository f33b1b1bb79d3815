"""Submission throughput of the web questionnaire, end to end, on this machine.

    .venv/bin/python bench/submit.py [--participants 4000] [--concurrency 32]

1. (Re)creates the PostgreSQL database ``hyoka_bench`` on 127.0.0.1, migrates it, loads the
   reference study and creates the participants with ``participant_create`` (their plain
   tokens stay in this process's memory only).
2. Starts gunicorn (``config.wsgi``) in production mode with bench-only secrets on a free
   port of 127.0.0.1.
3. Runs C concurrent clients (asyncio + aiohttp), each doing what a phone does per
   participant: GET the link, then ONE POST of a complete questionnaire with
   ``action=submit``. A share of participants sends that POST twice at once (a double tap):
   exactly one 303 and one 409 are expected.
4. Prints throughput and latencies, then checks the database: every accepted submission
   (303) is stored exactly once, and nothing else is. Exits non-zero on any loss,
   duplicate, double tap not answered 303 + 409, 5xx or client error.

Production sits behind a TLS-terminating proxy that sets ``X-Forwarded-Proto: https``; the
clients send that header, so Django treats each request as HTTPS (no SSL redirect, CSRF
checks the ``https://`` Origin), and they send the ``Secure`` CSRF cookie back as a browser
does over HTTPS. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import re
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:  # ``python bench/submit.py`` puts bench/ first, not the project
    sys.path.insert(0, str(BASE_DIR))

HOST = "127.0.0.1"  # the only target: this machine
POSTGRES = f"postgres://postgres@{HOST}:5432"
DB_NAME = "hyoka_bench"
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


def bench_environment(static_root: str) -> dict[str, str]:
    """Production mode with values that exist only for this run."""
    return {
        "HYOKA_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),  # 64 random characters
        "ALLOWED_HOSTS": HOST,
        "DATABASE_URL": f"{POSTGRES}/{DB_NAME}",
        "CELERY_BROKER_URL": BROKER,
        # Requests carry X-Forwarded-Proto: https (see the module docstring), so they are
        # secure to Django and would not be redirected anyway; the bench does not rely on it.
        "SECURE_SSL_REDIRECT": "false",
        "STATIC_ROOT": static_root,
        "SITE_URL": f"https://{HOST}",
        # A throwaway certificate, made by make_signing_certificate() (nothing is signed here).
        "HYOKA_SIGNING_P12": str(Path(static_root).parent / "bench-signing.p12"),
        "HYOKA_SIGNING_PASSPHRASE": secrets.token_urlsafe(24),
    }


def make_signing_certificate(env: dict[str, str]) -> None:
    from kpi.signing import make_development_certificate

    make_development_certificate(Path(env["HYOKA_SIGNING_P12"]), env["HYOKA_SIGNING_PASSPHRASE"])


def recreate_database() -> None:
    import psycopg

    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def flush_broker() -> None:
    import redis

    redis.Redis.from_url(BROKER).flushdb()


def prepare(participants: int) -> list[str]:
    """A fresh database with the reference study and ``participants`` participants at its
    open sites; returns their plain tokens."""
    from django.core.management import call_command
    from django.db import connections, transaction

    connections.close_all()
    recreate_database()
    flush_broker()
    call_command("migrate", interactive=False, verbosity=0)

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


def collect_static() -> None:
    """The hashed names and manifest production serves, without WhiteNoise's gzip and
    brotli copies: the bench never fetches a static file, and compressing the PDF font
    takes minutes here."""
    from django.conf import settings
    from django.core.management import call_command
    from django.test.utils import override_settings

    manifest = "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"
    with override_settings(STORAGES={**settings.STORAGES, "staticfiles": {"BACKEND": manifest}}):
        call_command("collectstatic", interactive=False, verbosity=0)


# --- The server -------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSpec:
    """``sync:5`` (5 sync workers) or ``gthread:2x8`` (2 workers of 8 threads)."""

    worker_class: str
    workers: int
    threads: int

    @classmethod
    def parse(cls, text: str) -> ServerSpec:
        worker_class, _, size = text.partition(":")
        workers, _, threads = size.partition("x")
        if worker_class not in {"sync", "gthread"} or not workers.isdigit():
            raise argparse.ArgumentTypeError(f"{text!r}: use sync:WORKERS or gthread:WxT")
        return cls(worker_class, int(workers), int(threads or 1))

    def __str__(self) -> str:
        if self.worker_class == "sync":
            return f"sync:{self.workers}"
        return f"{self.worker_class}:{self.workers}x{self.threads}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_gunicorn(spec: ServerSpec, env: dict[str, str], port: int, log: Path, wsgi: str):
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        wsgi,
        f"--bind={HOST}:{port}",
        f"--worker-class={spec.worker_class}",
        f"--workers={spec.workers}",
        f"--threads={spec.threads}",
        "--backlog=2048",
        "--keep-alive=5",
        "--worker-tmp-dir=/dev/shm",
        "--log-level=warning",
    ]
    with log.open("ab") as out:
        server = subprocess.Popen(
            command, cwd=BASE_DIR, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 30
    probe = urllib.request.Request(  # an unknown link: 404 once Django answers
        f"http://{HOST}:{port}/r/ready/", headers={"X-Forwarded-Proto": "https"}
    )
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited ({server.returncode}):\n{log.read_text()}")
        try:
            urllib.request.urlopen(probe, timeout=2)  # noqa: S310 (http://127.0.0.1 only)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    stop(server)
    raise SystemExit(f"gunicorn did not answer within 30 s:\n{log.read_text()}")


def stop(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(10)


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


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its live children."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            stat = Path(f"/proc/{current}/stat").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
        pending.extend(int(c) for c in children)
    return total


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


def machine_busy(seconds: float = 1.0) -> float:
    """Share of the machine's cores busy over the next ``seconds`` (1.0: all of them)."""
    busy, total = machine_cpu()
    time.sleep(seconds)
    busy2, total2 = machine_cpu()
    return (busy2 - busy) / max(total2 - total, 1e-9)


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    ticks = os.sysconf("SC_CLK_TCK")
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / ticks, sum(values) / ticks


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


@dataclass
class Tally:
    get_latency: list[float] = field(default_factory=list)
    post_latency: list[float] = field(default_factory=list)
    get_status: Counter[int] = field(default_factory=Counter)
    post_status: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    accepted: list[str] = field(default_factory=list)  # a token per 303
    answer_rows: int = 0  # Answer rows the accepted submissions should have stored
    doubles: int = 0
    doubles_wrong: list[tuple[int, ...]] = field(default_factory=list)
    participants: int = 0
    wall: float = 0.0


async def one_participant(
    session, base: str, origin: str, token: str, double: bool, rng: random.Random, tally: Tally
) -> None:
    import aiohttp

    url = f"{base}/r/{token}/"
    proxy = {"X-Forwarded-Proto": "https"}
    tally.participants += 1
    try:
        started = time.perf_counter()
        async with session.get(url, headers=proxy, allow_redirects=False) as page:
            html = await page.read()
            cookies = {name: morsel.value for name, morsel in page.cookies.items()}
        tally.get_latency.append(time.perf_counter() - started)
        tally.get_status[page.status] += 1
        if page.status != 200:
            return
        csrf = CSRF_FIELD.search(html)
        if csrf is None:
            tally.errors["form without csrfmiddlewaretoken"] += 1
            return
        answers = random_answers(rng)
        body = urllib.parse.urlencode(
            [("csrfmiddlewaretoken", csrf.group(1).decode()), ("action", "submit"), *answers]
        ).encode()
        headers = {
            **proxy,
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items()),
            "Origin": origin,
            "Referer": f"{origin}/r/{token}/",
        }
    except (aiohttp.ClientError, TimeoutError) as exc:
        tally.errors[f"GET {type(exc).__name__}"] += 1
        return

    async def submit() -> int:
        started = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as r:
                await r.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            tally.errors[f"POST {type(exc).__name__}"] += 1
            return 0
        tally.post_latency.append(time.perf_counter() - started)
        tally.post_status[r.status] += 1
        if r.status == 303:
            tally.accepted.append(token)
            tally.answer_rows += len(answers)
        return r.status

    if double:
        tally.doubles += 1
        statuses = tuple(sorted(await asyncio.gather(submit(), submit())))
        if statuses != (303, 409):
            tally.doubles_wrong.append(statuses)
    else:
        await submit()


async def load(
    *,
    port: int,
    tokens: list[str],
    concurrency: int,
    duration: float,
    double_share: float,
    seed: int,
) -> Tally:
    import aiohttp

    base = f"http://{HOST}:{port}"
    origin = f"https://{HOST}:{port}"  # what the browser sees, behind the TLS proxy
    rng = random.Random(seed)
    work = iter([(token, rng.random() < double_share) for token in tokens])
    tally = Tally()
    connector = aiohttp.TCPConnector(limit=2 * concurrency, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        deadline = time.monotonic() + duration

        async def phone(n: int) -> None:
            client_rng = random.Random(seed * 1000 + n)
            while time.monotonic() < deadline:
                item = next(work, None)
                if item is None:
                    return
                token, double = item
                await one_participant(session, base, origin, token, double, client_rng, tally)

        started = time.perf_counter()
        await asyncio.gather(*(phone(n) for n in range(concurrency)))
        tally.wall = time.perf_counter() - started
    return tally


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


def report(tally: Tally, spec: ServerSpec, cpu: dict[str, float]) -> tuple[float, bool]:
    rate = tally.post_status[303] / tally.wall if tally.wall else 0.0
    server_errors = sum(n for s, n in (tally.get_status + tally.post_status).items() if s >= 500)
    other = {s: n for s, n in tally.post_status.items() if s not in {303, 409} and s < 500} | {
        f"GET {s}": n for s, n in tally.get_status.items() if s != 200
    }
    print(f"  measured: {tally.participants} participants in {tally.wall:.2f} s")
    print(f"  submissions/s: {rate:.1f} (accepted submit POSTs / wall time)")
    for name, values in (("submit POST", tally.post_latency), ("GET form   ", tally.get_latency)):
        print(
            f"  {name}: p50 {ms(percentile(values, 50))}  p95 {ms(percentile(values, 95))}"
            f"  p99 {ms(percentile(values, 99))}  max {ms(max(values, default=math.nan))}"
            f"  (n={len(values)})"
        )
    print(
        f"  POST statuses: accepted 303: {tally.post_status[303]}, duplicate 409: "
        f"{tally.post_status[409]}, other: {other or 0}, 5xx: {server_errors}"
    )
    print(
        f"  double taps: {tally.doubles}, answered other than 303 + 409: "
        f"{len(tally.doubles_wrong)} {tally.doubles_wrong[:5] or ''}"
    )
    if tally.errors:
        print(f"  client errors: {dict(tally.errors)}")
    print(
        "  CPU during the measured phase, in cores: "
        + ", ".join(f"{name} {seconds / tally.wall:.2f}" for name, seconds in cpu.items())
        + f"; machine {sum(cpu.values()) / tally.wall:.2f} of {os.cpu_count()}"
    )
    # CPU per participant (one GET, one or two POSTs) is steadier than the rate when the
    # machine is shared: it gives the rate these cores would allow if they did nothing else.
    accepted = tally.post_status[303] or 1
    own = {name: seconds / accepted for name, seconds in cpu.items() if name != "anything else"}
    print(
        "  CPU per accepted submission: "
        + ", ".join(f"{name} {ms(seconds).strip()}" for name, seconds in own.items())
        + f"; ceiling on {os.cpu_count()} otherwise idle cores: "
        + f"{(os.cpu_count() or 1) / sum(own.values()):.0f} submissions/s"
    )
    bad = bool(server_errors or tally.doubles_wrong or tally.errors or other)
    return rate, bad


def run_one(args: argparse.Namespace, spec: ServerSpec, workdir: Path) -> Verdict:
    print(f"\n== gunicorn {spec}: {args.participants} participants, C={args.concurrency}")
    idle = 1 - machine_busy()
    print(f"  the machine was {idle:.0%} idle just before the run")
    if idle < 0.9:
        print("  WARNING: other work is running here; the figures below will be lower")
    started = time.perf_counter()
    tokens = prepare(args.participants)
    print(f"  set-up: database, study and participants in {time.perf_counter() - started:.1f} s")
    port = free_port()
    log = workdir / f"gunicorn-{spec}.log".replace(":", "-")
    server = start_gunicorn(spec, args.env, port, log, args.wsgi)
    try:
        warmup, measured = tokens[: args.warmup], tokens[args.warmup :]
        settings = {
            "port": port,
            "concurrency": args.concurrency,
            "duration": args.duration,
            "double_share": args.double_share,
        }
        first = asyncio.run(load(tokens=warmup, seed=args.seed, **settings))
        profiler = start_py_spy(args.py_spy, server.pid) if args.py_spy else None
        server_cpu, own_cpu = process_tree_cpu(server.pid), resource.getrusage(0)
        busy = machine_cpu()[0]
        with PostgresCpu() as db:
            tally = asyncio.run(load(tokens=measured, seed=args.seed + 1, **settings))
        busy, db_cpu = machine_cpu()[0] - busy, db.total
        own = resource.getrusage(0)
        load_cpu = own.ru_utime + own.ru_stime - own_cpu.ru_utime - own_cpu.ru_stime
        server_cpu = process_tree_cpu(server.pid) - server_cpu
        if profiler:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(60)
            print(f"  py-spy: collapsed stacks of the workers in {args.py_spy}")
        cpu = {  # CPU seconds during the measured phase
            "gunicorn": server_cpu,
            "PostgreSQL": db_cpu,
            "load generator": load_cpu,
            "anything else": busy - server_cpu - db_cpu - load_cpu,
        }
    finally:
        stop(server)
    rate, bad = report(tally, spec, cpu)
    warm_statuses = first.get_status + first.post_status
    if first.errors or first.doubles_wrong or set(warm_statuses) - {200, 303, 409}:
        bad = True
        print(
            f"  warm-up: unexpected statuses {dict(warm_statuses)}, client errors "
            f"{dict(first.errors)}, double taps answered {first.doubles_wrong}"
        )
    lost, duplicated, messages = check_database(
        first.accepted + tally.accepted, first.answer_rows + tally.answer_rows
    )
    print("\n".join(messages))
    logged = log.read_text(errors="replace")
    if "Traceback" in logged:
        bad = True
        print("  gunicorn logged errors (last 40 lines):\n" + "\n".join(logged.splitlines()[-40:]))
    p99 = percentile(tally.post_latency, 99)
    met = rate >= TARGET_RATE and p99 <= TARGET_P99
    print(
        f"  target ({TARGET_RATE}/s at submit p99 <= {TARGET_P99 * 1000:.0f} ms): "
        + ("met" if met else "NOT met")
    )
    return Verdict(spec, rate, p99, ok=not (bad or lost or duplicated))


def main(argv: list[str] | None = None) -> int:
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
        "--server",
        type=ServerSpec.parse,
        action="append",
        help="gunicorn worker model, e.g. sync:5 or gthread:2x8; repeat to compare "
        f"(each on a fresh database); default {' '.join(DEFAULT_SERVERS)}",
    )
    parser.add_argument("--seed", type=int, default=2021)
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
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    if args.participants <= args.warmup:
        parser.error("--participants must be larger than --warmup")
    specs = args.server or [ServerSpec.parse(s) for s in DEFAULT_SERVERS]

    with tempfile.TemporaryDirectory(prefix="hyoka-bench-") as tmp:
        workdir = Path(tmp)
        args.env = bench_environment(str(workdir / "static"))
        os.environ.update(args.env)
        os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
        import django

        django.setup()
        make_signing_certificate(args.env)
        collect_static()
        verdicts = []
        for spec in specs:
            verdicts.append(run_one(args, spec, workdir))
        flush_broker()
        if len(verdicts) > 1:
            print("\n== summary")
            for v in verdicts:
                print(f"  {v.spec!s:14} {v.rate:7.1f} submissions/s  submit p99 {ms(v.post_p99)}")
    return 0 if all(v.ok for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
