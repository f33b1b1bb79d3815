"""Set-up shared by the benchmarks: the bench databases, Django's environment (embedded or
production mode), a throwaway signing certificate, gunicorn started and stopped, the CPU
and memory figures, and the random but valid answers they all generate.

Every benchmark talks to this machine only (127.0.0.1). A script starts with::

    BASE_DIR = Path(__file__).resolve().parent.parent
    if str(BASE_DIR) not in sys.path:  # ``python bench/x.py`` puts bench/ first
        sys.path.insert(0, str(BASE_DIR))

    from bench import harness
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # the only target: this machine
POSTGRES = f"postgres://postgres@{HOST}:5432"

# Random but valid answers to the reference questionnaire (DESIGN.md codes): how likely
# each channel is ticked, and the weights of each single answer.
CHANNEL_P = {
    "anytime": 0.35,
    "night": 0.25,
    "midwife_chat": 0.30,
    "ward_phone": 0.20,
    "ward_desk": 0.15,
    "articles": 0.40,
    "live": 0.20,
    "home_visit": 0.50,
    "checkup": 0.45,
}
SINGLE_WEIGHTS = {
    "reassured": {"agree": 45, "somewhat_agree": 35, "somewhat_disagree": 13, "disagree": 7},
    "continue": {"agree": 50, "somewhat_agree": 30, "somewhat_disagree": 12, "disagree": 8},
    "reuse": {"agree": 40, "somewhat_agree": 35, "somewhat_disagree": 15, "disagree": 10},
    "tool": {"line": 60, "phone": 12, "face_to_face": 15, "email": 5, "other_sns": 5, "other": 3},
}
UNDERSTOOD_WEIGHTS = {"fully": 50, "fairly": 35, "not_very": 10, "not_at_all": 5}


# --- Databases and Django ---------------------------------------------------------------


def database_url(name: str) -> str:
    return f"{POSTGRES}/{name}"


def recreate_database(name: str) -> None:
    """Drop (ending its sessions) and create the PostgreSQL database ``name``."""
    import psycopg

    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def embedded_environment(database: str, **extra: str) -> dict[str, str]:
    """Embedded mode on ``database`` (a URL): no broker, so a scoring or a rendering runs in
    this process as the task would; no debug query log kept in memory, as in production."""
    return {
        "HYOKA_ENV": "embedded",
        "DATABASE_URL": database,
        "CELERY_BROKER_URL": "",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def production_environment(
    *, database: str, broker: str, static_root: Path, signing: tuple[Path, str]
) -> dict[str, str]:
    """Production mode with values that exist only for this run (a random SECRET_KEY, the
    throwaway certificate of ``signing_certificate``)."""
    return {
        "HYOKA_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),  # 64 random characters
        "ALLOWED_HOSTS": HOST,
        "DATABASE_URL": database,
        "CELERY_BROKER_URL": broker,
        # Requests carry X-Forwarded-Proto: https (bench/submit.py), so they are secure to
        # Django and would not be redirected anyway; the bench does not rely on it.
        "SECURE_SSL_REDIRECT": "false",
        "STATIC_ROOT": str(static_root),
        "SITE_URL": f"https://{HOST}",
        "HYOKA_SIGNING_P12": str(signing[0]),
        "HYOKA_SIGNING_PASSPHRASE": signing[1],
        "HYOKA_TSA_URL": f"http://{HOST}:9/",  # nothing is timestamped by the submit bench
        "HYOKA_TSA_TRUST_ROOTS": "/nonexistent/tsa-root.pem",
        # Required in production: the link key, the contact details' key and a mail
        # server (bench/fieldwork.py points EMAIL_URL at its own).
        "HYOKA_LINK_KEY": secrets.token_urlsafe(32),
        "HYOKA_CONTACT_KEYS": Fernet.generate_key().decode(),
        "EMAIL_URL": f"smtp://{HOST}:25",
    }


def setup_django(env: dict[str, str]) -> None:
    """Set ``env`` in this process (a server started later inherits it) and start Django."""
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def signing_certificate(folder: Path) -> tuple[Path, str]:
    """A development certificate for this run only, and its random passphrase (made with
    the project's own ``make_development_certificate``; Django need not be set up)."""
    from kpi.evaluations.signing import make_development_certificate

    passphrase = secrets.token_urlsafe(24)
    return make_development_certificate(folder / "bench-signing.p12", passphrase), passphrase


def collect_static() -> None:
    """The hashed names and manifest production serves, without WhiteNoise's gzip and
    brotli copies: no bench fetches a static file, and compressing the PDF font takes
    minutes here."""
    from django.conf import settings
    from django.core.management import call_command
    from django.test.utils import override_settings

    manifest = "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"
    with override_settings(STORAGES={**settings.STORAGES, "staticfiles": {"BACKEND": manifest}}):
        call_command("collectstatic", interactive=False, verbosity=0)


# --- gunicorn ---------------------------------------------------------------------------


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


def start_gunicorn(
    spec: ServerSpec, env: dict[str, str], port: int, log: Path, wsgi: str
) -> subprocess.Popen[bytes]:
    """gunicorn serving ``wsgi`` on 127.0.0.1:``port`` with ``env``, once Django answers."""
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


def stop(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(10)


# --- CPU and memory ---------------------------------------------------------------------


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


def machine_cpu() -> tuple[float, float, float]:
    """(busy, total, stolen) CPU seconds of the whole machine since boot. Stolen: the time
    a virtual machine's cores were ready to run but the hypervisor ran something else (on
    a shared host, a share of the machine that no process here used nor could use)."""
    ticks = os.sysconf("SC_CLK_TCK")
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    stolen = values[7] if len(values) > 7 else 0
    return (sum(values) - idle - stolen) / ticks, sum(values) / ticks, stolen / ticks


def machine_busy(seconds: float = 1.0) -> float:
    """Share of the machine's cores busy (or stolen) over the next ``seconds`` (1.0: all
    of them); 0.0 where /proc cannot tell."""
    try:
        busy, total, stolen = machine_cpu()
        time.sleep(seconds)
        busy2, total2, stolen2 = machine_cpu()
    except (OSError, ValueError, IndexError):
        return 0.0
    return (busy2 - busy + stolen2 - stolen) / max(total2 - total, 1e-9)


def idle_warning(before: str, consequence: str) -> None:
    """Say how idle the machine was just ``before`` measuring, and warn when it was busy."""
    idle = 1 - machine_busy()
    print(f"  the machine was {idle:.0%} idle just before {before}")
    if idle < 0.9:
        print(f"  WARNING: other work is running here; {consequence}")


def status_kb(field_name: str) -> int | None:
    """A ``/proc/self/status`` figure in kB (``VmRSS``, ``VmHWM``), or None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Linux: writing 5 to clear_refs resets VmHWM (the peak resident set) to the current."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def ratio(value: float, baseline: float) -> str:
    """``value`` against a baseline measured in the same run, as ``1.23x``."""
    return f"{value / baseline:.2f}x" if baseline else "n/a"
