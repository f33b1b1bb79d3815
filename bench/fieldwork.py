"""E-mail invitations delivered by real Celery workers to a local SMTP server, and a worker
SIGKILLed in the middle (issue 14: "100,000 e-mail invitations rendered and delivered to a
local SMTP server: messages per second at an unlimited rate (target >= 200/s on this
machine), 0 duplicates and 0 lost when a worker is killed with SIGKILL in the middle").

    .venv/bin/python bench/fieldwork.py                         # 100,000 invitations
    .venv/bin/python bench/fieldwork.py --participants 2000 --kill

Each run from scratch (see bench/README.md for the details):

1. drops and creates the PostgreSQL database ``hyoka_bench_fieldwork``, migrates it, loads
   the reference study, creates the participants at its open sites in bulk (their stable
   links and their contact details, the e-mail addresses encrypted by fieldwork's own
   field, on the reserved domain ``example.test``), a sender per site, and queues one
   invitation per participant with ``fieldwork.services.email_deliveries_queue``: the
   rows, and (after commit) one ``fieldwork.send_email_deliveries`` task per batch of
   ``HYOKA_EMAIL_BATCH_SIZE`` (200) ids, on a private redis-server;
2. starts an SMTP server (aiosmtpd, in its own process, 127.0.0.1, a free port) that
   appends the time and the Message-ID of every message it accepts to a file;
3. measures a **baseline** first: the same rendered message sent by a bare loop of
   Django's ``EmailMultiAlternatives`` over one SMTP connection (``--baseline`` messages,
   each with its own Message-ID): the floor of what Django's e-mail framework and this
   SMTP server cost;
4. starts ``celery -A config worker`` (prefork, one process per core) in production mode
   (``HYOKA_EMAIL_RATE_PER_SECOND=0``: no limit), which takes the queued tasks; with
   ``--kill``, SIGKILLs the whole worker process group once ``--kill-at`` (40 %) of the
   messages were accepted, starts new workers, and plays beat: every
   ``--sweep-interval`` seconds it enqueues the sweep (the task without ids), which takes
   back the rows the dead workers left ``sending`` once ``HYOKA_DELIVERY_SENDING_TIMEOUT``
   (short for the bench) has passed;
5. waits until no delivery is queued or sending, then counts: messages per second (wall
   time from the first to the last message the SMTP server accepted), the workers' CPU
   per message (and PostgreSQL's, the SMTP server's), the rows sent/failed/queued, and at
   the server: **lost** (a row marked sent whose Message-ID never arrived, or a row not
   sent at the end) and **duplicates** (a Message-ID received more than once: resent with
   the same Message-ID after the kill, as the design allows: at least once, never lost).

Exits non-zero on any loss (a duplicate is reported, not an error: fieldwork/sending.py).

Figures of 4 December 2026 (2 cores shared with other agents: a pytest-xdist run of two
workers was busy throughout, the machine 98 % busy, load average 3 to 7; see bench/README.md):

- 100,000 invitations: 100,000 accepted, 100,000 distinct, in 761 s: **131 messages/s**
  (target 200/s: not met on this busy machine). CPU per message: **workers 4.10 ms**,
  PostgreSQL 0.82 ms (an upper bound: its shared WAL writer counts too), SMTP server
  1.26 ms: 6.2 ms in all, i.e. about 320 messages/s if the two cores did nothing else
  (the workers alone: ~490/s). Baseline in the same run (a bare ``EmailMultiAlternatives``
  loop over one connection, 5,000 messages): 364 messages/s, 1.64 ms CPU per message;
  the workers cost **2.5x** the baseline's CPU per message (rate 0.36x, but the baseline
  ran while the machine was less busy). Queueing 100,000 (``email_deliveries_queue``):
  29 s. Rows at the end: 100,000 sent; 0 lost, 0 duplicates.
- 100,000 again, after the bench's own polling was made cheap (see the last point): 145
  messages/s over 690 s, machine 99 % busy; workers 3.96 ms, PostgreSQL 0.76 ms, SMTP
  server 1.20 ms per message; baseline 319/s, 1.92 ms (2.06x); 0 lost, 0 duplicates.
- 2,000 invitations (machine 48 % idle at the start): 278 messages/s, workers 5.15 ms
  per message (start-up included then), baseline 348/s, 1.78 ms.
- ``--kill``, 20,000 (SIGKILL to the worker group at 8,071 accepted, new workers, the
  sweep every 5 s, sending timeout 20 s): 20,000 sent, 20,000 distinct Message-IDs
  received, **0 lost, 0 duplicates**; 182 messages/s over 110 s including the 20 s the
  killed batches waited; workers 3.87 ms CPU per message (2.13x the baseline's 1.81 ms).
  ``--kill``, 2,000: 0 lost, **1 duplicate** (resent with the same Message-ID: the kill
  fell between the server's "250" and the row's UPDATE to sent), 2,001 received.
- The first 100,000 run's bench process re-read the SMTP server's whole file twice a
  second (~50 s of its 128 s of CPU, taken from the workers); it now reads on from where
  it was.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:  # ``python bench/fieldwork.py`` puts bench/ first
    sys.path.insert(0, str(BASE_DIR))

from bench import harness  # noqa: E402
from bench.harness import HOST  # noqa: E402

DB_NAME = "hyoka_bench_fieldwork"
TARGET_RATE = 200  # messages per second
DOMAIN = "example.test"  # reserved (RFC 2606): never a real mailbox
MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


# --- The SMTP server (its own process: ``fieldwork.py --serve-smtp PORT FILE``) ----------


def serve_smtp(port: int, log: Path) -> None:
    """Accept every message on 127.0.0.1:``port``; append "time Message-ID" per message."""
    from aiosmtpd.controller import Controller

    out = log.open("a", buffering=1)

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            found = MESSAGE_ID.search(envelope.original_content or envelope.content)
            mid = found.group(1).decode("ascii", "replace") if found else "<none>"
            out.write(f"{time.time():.6f} {mid}\n")
            return "250 Message accepted for delivery"

    controller = Controller(Handler(), hostname=HOST, port=port, data_size_limit=1 << 22)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    controller.stop()
    out.close()


def start_smtp(log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = harness.free_port()
    command = [sys.executable, __file__, "--serve-smtp", str(port), str(log)]
    server = subprocess.Popen(command, cwd=BASE_DIR, stdout=subprocess.PIPE)
    assert server.stdout is not None
    if server.stdout.readline().strip() != b"ready":
        raise SystemExit("the SMTP server did not start")
    return server, port


class LineCount:
    """How many lines the SMTP server's file has, read on from where it was (the bench
    polls it twice a second; reading 100,000 lines each time would take its own CPU)."""

    def __init__(self, log: Path) -> None:
        self.file = log.open("rb")
        self.lines = 0

    def __call__(self) -> int:
        self.lines += self.file.read().count(b"\n")
        return self.lines


def received(log: Path) -> list[tuple[float, str]]:
    rows = []
    for line in log.read_text().splitlines():
        when, _, mid = line.partition(" ")
        rows.append((float(when), mid))
    return rows


# --- Redis ------------------------------------------------------------------------------


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A private redis-server (nothing saved), as tests/faults/processes.py starts one."""
    import redis

    port = harness.free_port()
    command = ["redis-server", "--port", str(port), "--bind", HOST, "--save", ""]
    command += ["--appendonly", "no", "--dir", str(folder)]
    command += ["--logfile", str(folder / "redis.log")]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    client = redis.Redis(host=HOST, port=port, socket_timeout=1)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return server, port
        except redis.ConnectionError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("redis-server did not start") from None
            time.sleep(0.1)


# --- Set-up -----------------------------------------------------------------------------


def prepare(participants: int) -> tuple[int, float]:
    """A fresh database with the reference study, ``participants`` participants with
    contact details, a sender per site, and an invitation queued for each (the tasks go
    to the broker after commit). Returns (deliveries queued, seconds the queueing took)."""
    from django.db import connections, transaction

    connections.close_all()
    harness.recreate_database(DB_NAME)
    harness.migrate()

    from fieldwork.models import Contact, Sender
    from fieldwork.services import email_deliveries_queue
    from surveys.links import new_link
    from surveys.loading import load_study
    from surveys.models import Participant, ParticipantLink

    study = load_study()
    sites = [site for site in study.sites.order_by("code") if site.is_survey_open()]
    assert sites, "the reference study has no open site"
    started = time.monotonic()
    # In bulk, not participant_create (one history row and three queries each): the
    # same rows (a stable link under HYOKA_LINK_KEY), without the "created" history.
    for start in range(0, participants, 5000):
        with transaction.atomic():
            links = [new_link() for _ in range(start, min(start + 5000, participants))]
            people = Participant.objects.bulk_create(
                [
                    Participant(
                        site=sites[(start + i) % len(sites)],
                        reference=f"BENCH-{start + i:06d}",
                        token_hash=link.token_hash,
                    )
                    for i, link in enumerate(links)
                ]
            )
            ParticipantLink.objects.bulk_create(
                [link.row(p.pk) for p, link in zip(people, links, strict=True)]
            )
            # EncryptedTextField encrypts on the way in, as on any save.
            Contact.objects.bulk_create(
                [
                    Contact(
                        participant_id=p.pk,
                        email=f"p{p.pk:06d}@{DOMAIN}",
                        language="en" if p.pk % 10 == 0 else "ja",
                    )
                    for p in people
                ]
            )
    for site in sites:
        Sender.objects.create(
            site=site,
            display_name_ja=f"{site.name_ja} 保健センター",
            display_name_en="Health Centre",
            from_address=f"kenko@{DOMAIN}",
            reply_to=f"soudan@{DOMAIN}",
        )
    print(
        f"  {participants} participants with contact details in {time.monotonic() - started:.1f} s"
    )
    started = time.monotonic()
    queued = email_deliveries_queue(participants=Participant.objects.all())
    took = time.monotonic() - started
    print(
        f"  {len(queued.ids)} invitations queued in {took:.1f} s ({len(queued.ids) / took:.0f}/s)"
    )
    connections.close_all()
    return len(queued.ids), took


# --- The baseline -----------------------------------------------------------------------


def baseline(count: int) -> tuple[float, float]:
    """A real invitation, rendered once by fieldwork's own ``email.build``, sent ``count``
    times by a bare loop of ``EmailMultiAlternatives`` over one SMTP connection. Returns
    (messages per second, CPU seconds of this process per message)."""
    from django.core.mail import EmailMultiAlternatives, get_connection

    from fieldwork.channels import email
    from fieldwork.models import Delivery

    model = email.build(
        Delivery.objects.select_related(
            "participant__contact", "participant__site__study", "participant__site__sender"
        ).first()
    )
    html = model.alternatives[0][0]
    connection = get_connection(fail_silently=False)
    connection.open()
    cpu = time.process_time()
    started = time.perf_counter()
    for i in range(count):
        message = EmailMultiAlternatives(
            subject=model.subject,
            body=model.body,
            from_email=model.from_email,
            to=[f"b{i:06d}@{DOMAIN}"],
            reply_to=model.reply_to,
            headers={**model.extra_headers, "Message-ID": f"<baseline-{i}@{DOMAIN}>"},
        )
        message.attach_alternative(html, "text/html")
        connection.send_messages([message])
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    connection.close()
    return count / wall, cpu / count


# --- The workers ------------------------------------------------------------------------


class Workers:
    """``celery -A config worker`` (prefork) in its own process group; its CPU (the main
    process and its pool) sampled every half second, so that a SIGKILLed generation keeps
    what it used until its last sample."""

    def __init__(self, env: dict[str, str], concurrency: int, log: Path) -> None:
        self.env, self.concurrency, self.log = env, concurrency, log
        self.process: subprocess.Popen[bytes] | None = None
        self.used = 0.0  # CPU seconds of the generations before this one
        self.current = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def start(self) -> None:
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=prefork"]
        command += [
            f"--concurrency={self.concurrency}",
            "--loglevel=WARNING",
            "-n",
            f"bench{secrets.token_hex(3)}@%h",
        ]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command,
                cwd=BASE_DIR,
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: SIGKILL reaches the pool
            )

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            if self.process is not None and self.process.poll() is None:
                self.current = max(self.current, harness.process_tree_cpu(self.process.pid))

    def cpu(self) -> float:
        return self.used + self.current

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.used += self.current
        self.current = 0.0

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        if self.process is not None and self.process.poll() is None:
            self.current = max(self.current, harness.process_tree_cpu(self.process.pid))
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def status_counts() -> Counter[str]:
    from django.db import connections
    from django.db.models import Count

    from fieldwork.models import Delivery

    counts = Counter(
        dict(Delivery.objects.values_list("status").annotate(n=Count("pk")).order_by())
    )
    connections.close_all()
    return counts


# --- The run ----------------------------------------------------------------------------


def run(args: argparse.Namespace, workdir: Path) -> int:
    from bench import submit  # PostgreSQL's CPU, sampled as submit.py does

    submit.DB_NAME = DB_NAME
    redis_server, redis_port = start_redis(workdir)
    smtp_log = workdir / "received.txt"
    smtp, smtp_port = start_smtp(smtp_log)
    env = harness.production_environment(
        database=harness.database_url(DB_NAME),
        broker=f"redis://{HOST}:{redis_port}/1",
        static_root=workdir / "static",
        signing=harness.signing_certificate(workdir),
    )
    env.update(
        HYOKA_LINK_KEY=secrets.token_urlsafe(48),
        HYOKA_CONTACT_KEYS=__import__("base64").urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        EMAIL_URL=f"smtp://{HOST}:{smtp_port}",
        HYOKA_EMAIL_RATE_PER_SECOND="0",  # no limit
        HYOKA_MESSAGE_ID_DOMAIN=DOMAIN,
        # A killed worker's rows come back after this; it must exceed the task time limit.
        CELERY_TASK_TIME_LIMIT=str(args.sending_timeout - 5),
        CELERY_TASK_SOFT_TIME_LIMIT=str(args.sending_timeout - 10),
        HYOKA_DELIVERY_SENDING_TIMEOUT=str(args.sending_timeout),
        CELERY_VISIBILITY_TIMEOUT="60",
        LOG_LEVEL="WARNING",
    )
    workers = None
    try:
        harness.setup_django(env)
        print(f"== set-up: {args.participants} participants, database {DB_NAME}")
        total, queue_seconds = prepare(args.participants)

        print(f"\n== baseline: {args.baseline} messages, a bare EmailMultiAlternatives loop")
        base_rate, base_cpu = baseline(args.baseline)
        print(f"  {base_rate:.0f} messages/s, {base_cpu * 1000:.2f} ms CPU per message (client)")
        arrived = LineCount(smtp_log)
        skip = arrived()

        print(f"\n== delivery by celery workers (prefork, concurrency {args.concurrency})")
        print(f"  load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        harness.idle_warning("the delivery", "the wall rate drops; CPU per message is steadier")
        smtp_cpu0 = harness.process_tree_cpu(smtp.pid)
        busy0, all0, stolen0 = harness.machine_cpu()
        workers = Workers(env, args.concurrency, workdir / "celery.log")
        killed_at = None
        with submit.PostgresCpu() as pg:
            started = time.monotonic()
            from fieldwork.tasks import send_email_deliveries

            if args.sweep_only:
                # Beat's sweep alone (the task without ids): drop the per-batch tasks the
                # queueing published, enqueue one sweep; one process sends everything.
                import redis

                redis.Redis(host=HOST, port=redis_port, db=1).flushdb()
                send_email_deliveries.delay()
            workers.start()
            last_sweep = last_count = 0.0
            cpu_at_first = None  # the workers' start-up (imports) is not a message's cost
            while True:
                time.sleep(0.5)
                accepted = arrived() - skip
                if cpu_at_first is None and accepted:
                    cpu_at_first = workers.cpu()
                if args.kill and killed_at is None and accepted >= args.kill_at * total:
                    workers.kill()
                    killed_at = accepted
                    print(f"  SIGKILL to the workers' process group at {accepted} accepted")
                    workers.start()
                if killed_at is not None and time.monotonic() - last_sweep > args.sweep_interval:
                    send_email_deliveries.delay()  # what beat enqueues
                    last_sweep = time.monotonic()
                if time.monotonic() - last_count < 2:
                    continue
                last_count = time.monotonic()
                counts = status_counts()
                if not counts["queued"] and not counts["sending"]:
                    break
                if time.monotonic() - started > args.timeout:
                    print(f"  TIMEOUT after {args.timeout} s: {dict(counts)}")
                    break
            wall_total = time.monotonic() - started
            workers.stop()
        busy1, all1, stolen1 = harness.machine_cpu()
        smtp_cpu = harness.process_tree_cpu(smtp.pid) - smtp_cpu0
        load = os.getloadavg()
    finally:
        if workers is not None:
            workers.stop()
        harness.stop(smtp)
        redis_server.terminate()
        redis_server.wait(10)

    arrivals = received(smtp_log)[skip:]
    times = [t for t, _ in arrivals]
    wall = (max(times) - min(times)) if len(times) > 1 else 0.0
    by_id = Counter(mid for _, mid in arrivals)
    counts = status_counts()
    from fieldwork.models import Delivery

    sent_ids = set(
        Delivery.objects.filter(status="sent").values_list("provider_message_id", flat=True)
    )
    lost_sent = len(sent_ids - set(by_id))
    not_sent = total - counts["sent"]
    duplicates = sum(n - 1 for n in by_id.values() if n > 1)
    strays = len(set(by_id) - sent_ids)  # received but its row not "sent": counted as lost too
    rate = len(arrivals) / wall if wall else 0.0
    unique = len(by_id)
    cpu = (workers.cpu() if workers else 0.0) - (cpu_at_first or 0.0)
    print(
        f"  {len(arrivals)} messages accepted ({unique} distinct) in {wall:.1f} s: "
        f"{rate:.0f} messages/s"
    )
    print(f"  (from the workers' start to the last row done: {wall_total:.1f} s)")
    print(f"  target >= {TARGET_RATE}/s: {'met' if rate >= TARGET_RATE else 'NOT met'}")
    print(
        f"  CPU per message: workers {cpu / max(unique, 1) * 1000:.2f} ms, "
        f"PostgreSQL {pg.total / max(unique, 1) * 1000:.2f} ms, "
        f"SMTP server {smtp_cpu / max(unique, 1) * 1000:.2f} ms"
    )
    machine = (busy1 - busy0) / max(all1 - all0, 1e-9)
    print(
        f"  machine busy {machine:.0%}, stolen {(stolen1 - stolen0) / max(all1 - all0, 1e-9):.0%};"
        f" load average after: {' '.join(f'{v:.2f}' for v in load)}"
    )
    print(
        f"  against the baseline: rate {harness.ratio(rate, base_rate)}, "
        f"CPU per message {harness.ratio(cpu / max(unique, 1), base_cpu)}"
    )
    print(f"  queueing {total} invitations (email_deliveries_queue): {queue_seconds:.1f} s")
    print(f"  rows: {dict(sorted(counts.items()))}")
    if args.kill:
        print(f"  killed at {killed_at} accepted")
    print(
        f"  lost: {lost_sent} sent but never received, {not_sent} not sent, "
        f"{strays} received but not marked sent"
    )
    print(f"  duplicates: {duplicates} (resent with the same Message-ID)")
    self_rusage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"  the bench process itself: {self_rusage.ru_utime + self_rusage.ru_stime:.1f} s CPU")
    ok = lost_sent == 0 and not_sent == 0 and strays == 0
    print(f"  {'OK' if ok else 'FAILED'}: {'0 lost' if ok else 'messages lost'}")
    harness.drop_database(DB_NAME) if not args.keep else None
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve-smtp", nargs=2, metavar=("PORT", "FILE"), help=argparse.SUPPRESS)
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=5000, help="baseline messages")
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--kill", action="store_true", help="SIGKILL the workers mid-run")
    parser.add_argument("--kill-at", type=float, default=0.4)
    parser.add_argument("--sending-timeout", type=int, default=20)
    parser.add_argument("--sweep-interval", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument(
        "--sweep-only",
        action="store_true",
        help="drop the per-batch tasks and let one sweep task (beat's) send everything",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    if args.serve_smtp:
        serve_smtp(int(args.serve_smtp[0]), Path(args.serve_smtp[1]))
        return 0
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    with tempfile.TemporaryDirectory(prefix="hyoka-bench-") as tmp:
        return run(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
