"""Real processes for the fault tests, each started and stopped by the test itself.

* ``RedisServer``: a private ``redis-server`` on a free port of 127.0.0.1 (never the
  machine's shared Redis), that the test stops and starts again on the same port.
* ``TcpProxy``: a TCP forwarder in front of the shared PostgreSQL; ``cut()`` drops every
  connection and refuses new ones (as a database restart or a network cut does),
  ``restore()`` forwards again. The shared PostgreSQL itself is never touched.
* ``web_server``: the web app as production runs it, gunicorn ``config.wsgi`` with
  ``HYOKA_ENV=production``, with the settings each test gives.
* ``celery_beat``: ``celery -A config beat`` with the schedule in a temporary file.

Only 127.0.0.1; every wait and every loop is bounded in time.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis
from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parent.parent.parent
HOST = "127.0.0.1"
START_TIMEOUT = 60  # seconds for a process to answer
STOP_TIMEOUT = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)


# --- Redis ------------------------------------------------------------------------------


@dataclass
class RedisServer:
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://{HOST}:{self.port}/{db}"

    def start(self) -> None:
        """Start on the same port each time; empty (nothing saved, nothing appended), as
        a Redis that lost its memory in a crash."""
        assert self.process is None or self.process.poll() is not None
        command = ["redis-server", "--port", str(self.port), "--bind", HOST]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        command += ["--logfile", str(self.directory / "redis.log")]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        client = redis.Redis(host=HOST, port=self.port, socket_timeout=1)
        with client:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError("redis-server did not start") from None
                    time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.thaw()  # a stopped process cannot handle SIGTERM
            stop_process(self.process)

    def freeze(self) -> None:
        """SIGSTOP: connections are still accepted (by the kernel) but never answered, as
        with a Redis stuck swapping or a host gone silent."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    directory.mkdir(parents=True, exist_ok=True)
    server = RedisServer(port=free_port(), directory=directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- A TCP proxy the test can cut -------------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream``. While cut, every connection is closed
    and new ones are accepted and closed at once: the client sees its server go away.
    While hung, new connections are accepted and never answered: a host that is gone
    without a word (a network cut, a failover), which only a timeout can tell."""

    POLL = 0.2  # seconds each thread waits before looking at its stop flag again

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(self.POLL)
        self.port = self._listener.getsockname()[1]
        self._cut = threading.Event()
        self._hang = threading.Event()
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._threads: list[threading.Thread] = []
        self._spawn(self._accept)

    def cut(self) -> None:
        self._cut.set()
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            self._close(pair)

    def hang(self) -> None:
        self.cut()
        self._hang.set()

    def restore(self) -> None:
        self._hang.clear()
        self._cut.clear()
        with self._lock:
            held, self._held = self._held, []
        for sock in held:
            sock.close()

    def close(self) -> None:
        self._stop.set()
        self.restore()
        self.cut()
        for thread in self._threads:
            thread.join(STOP_TIMEOUT)
        self._listener.close()

    def _spawn(self, target, *args) -> None:  # type: ignore[no-untyped-def]
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._hang.is_set():
                with self._lock:
                    self._held.append(client)
                continue
            if self._cut.is_set():
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            pair = (client, server)
            with self._lock:
                self._pairs.append(pair)
            self._spawn(self._pump, pair)

    def _pump(self, pair: tuple[socket.socket, socket.socket]) -> None:
        client, server = pair
        peer = {client: server, server: client}
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select([client, server], [], [], self.POLL)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peer[sock].sendall(data)
        except (OSError, ValueError):  # closed by cut(), or by the other side
            return
        finally:
            self._close(pair)

    @staticmethod
    def _close(pair: tuple[socket.socket, socket.socket]) -> None:
        for sock in pair:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@contextlib.contextmanager
def tcp_proxy(upstream: tuple[str, int]) -> Iterator[TcpProxy]:
    proxy = TcpProxy(upstream)
    try:
        yield proxy
    finally:
        proxy.close()


# --- The web app ------------------------------------------------------------------------


@dataclass
class WebServer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def origin(self) -> str:
        """The origin a browser sees: production is behind a TLS proxy (see HTTPS)."""
        return f"https://{HOST}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


# Production sits behind a TLS-terminating proxy that sets this header; the tests connect
# over loopback, which production trusts as that proxy by default (TRUSTED_PROXIES):
# requests carrying it are HTTPS to Django, so they are not redirected and the Secure CSRF
# cookie applies, as in bench/submit.py.
HTTPS = {"X-Forwarded-Proto": "https"}


def production_environment(
    *, database_url: str, broker_url: str, static_root: Path, **extra: str
) -> dict[str, str]:
    return {
        **os.environ,
        "HYOKA_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": HOST,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "STATIC_ROOT": str(static_root),
        "SITE_URL": f"https://{HOST}",
        # Required in production; nothing is signed by these tests.
        "HYOKA_SIGNING_P12": str(static_root.parent / "unused-signing.p12"),
        "HYOKA_SIGNING_PASSPHRASE": secrets.token_urlsafe(24),
        "HYOKA_TSA_URL": f"http://{HOST}:{free_port()}/",
        "HYOKA_TSA_TRUST_ROOTS": "/nonexistent/tsa-root.pem",
        # Required in production: the link key, the contact details' key and the mail
        # server (nothing is e-mailed by these tests).
        "HYOKA_LINK_KEY": secrets.token_urlsafe(32),
        "HYOKA_CONTACT_KEYS": Fernet.generate_key().decode(),
        "EMAIL_URL": f"smtp://{HOST}:{free_port()}",
        **extra,
    }


@contextlib.contextmanager
def web_server(env: dict[str, str], log_path: Path) -> Iterator[WebServer]:
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "config.wsgi", f"--bind={HOST}:{port}"]
    command += ["--worker-class=gthread", "--workers=1", "--threads=4", "--timeout=60"]
    command += ["--worker-tmp-dir=/dev/shm", "--log-level=warning"]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    server = WebServer(process=process, port=port, log_path=log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:  # any answer from Django will do: /healthz may well say 503
            try:
                httpx.get(f"{server.url}/healthz", timeout=5)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"gunicorn did not start:\n{server.log()}") from None
                time.sleep(0.2)
        yield server
    finally:
        stop_process(process)


# --- Celery beat ------------------------------------------------------------------------


@contextlib.contextmanager
def celery_beat(env: dict[str, str], directory: Path) -> Iterator[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO"]
    command += [f"--schedule={directory / 'beat-schedule'}", f"--pidfile={directory / 'beat.pid'}"]
    with (directory / "beat.log").open("ab") as log:
        process = subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        stop_process(process)


# --- A participant's phone --------------------------------------------------------------

CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken"\s+value="([^"]+)"')


@dataclass
class Form:
    """What a phone keeps after opening the questionnaire: the form's CSRF token and the
    cookies to send back."""

    url: str
    csrf: str
    cookie: str


def open_form(server: WebServer, token: str) -> Form:
    url = f"{server.url}/r/{token}/"
    page = httpx.get(url, headers=HTTPS, timeout=30)
    assert page.status_code == 200, (page.status_code, page.text[:500])
    match = CSRF_FIELD.search(page.text)
    assert match is not None, "the form has no csrfmiddlewaretoken field"
    # The cookie is Secure (production): a client library would not send it back over
    # plain http, so it is sent by hand, as a browser does over HTTPS.
    cookies = [header.split(";", 1)[0] for header in page.headers.get_list("set-cookie")]
    return Form(url=url, csrf=match.group(1), cookie="; ".join(cookies))


def post_form(
    server: WebServer, form: Form, action: str, answers: dict[str, object], query: str = ""
) -> httpx.Response:
    body = {"csrfmiddlewaretoken": form.csrf, "action": action, **answers}
    headers = {
        **HTTPS,
        "Cookie": form.cookie,
        "Origin": server.origin,
        "Referer": form.url.replace(server.url, server.origin),
    }
    return httpx.post(form.url + query, data=body, headers=headers, timeout=60)
