"""``manage.py`` in a process of its own, forked from an interpreter that has already
imported the project's heavy libraries (pandas, numpy, redis, aiohttp, pyhanko...).

A test that starts ``manage.py`` with an environment built from scratch spends most of its
second and a half importing those libraries, and the settings tests start about fifty.
Here one interpreter (with the same clean environment) imports them once; each call forks
it, and the child replaces its whole environment with the one given, changes to the
project's folder and runs ``manage.py`` as ``python manage.py ARGS`` would: Django, the
settings and the project's own code are imported in the child, from scratch, every time
(nothing of Hyoka's is imported before the fork). Its exit status, standard output and
error come back as a ``subprocess.CompletedProcess``; an uncaught exception is printed as
Python prints it and gives exit status 1.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# Third-party libraries only, none of which reads Django's settings when imported.
PRELOAD = [
    "pandas",
    "numpy",
    "redis",
    "aiohttp",
    "pyhanko",
    "pyhanko_certvalidator",
    "pyreadstat",
    "psycopg",
    "requests",
    "xlsxwriter",
    "celery",
    "kombu",
    "linebot",
    "django.core.management",
]

_SERVER = r"""
import json, os, runpy, sys, traceback
for name in sys.argv[1:]:
    try:
        __import__(name)
    except Exception:
        pass
sys.argv = ["manage.py"]
print("ready", flush=True)
for line in sys.stdin:
    request = json.loads(line)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.path[0] = request["cwd"]
        sys.argv = ["manage.py", *request["args"]]
        code = 0
        try:
            runpy.run_path("manage.py", run_name="__main__")
        except SystemExit as stop:
            if stop.code is None or isinstance(stop.code, int):
                code = stop.code or 0
            else:
                print(stop.code, file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(json.dumps(os.waitstatus_to_exitcode(status)), flush=True)
"""


class ForkServer:
    def __init__(self, base_env: dict[str, str]) -> None:
        # One thread in the server, so that forking it is safe (OpenBLAS starts a pool).
        env = {**base_env, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        self.folder = tempfile.TemporaryDirectory(prefix="hyoka-manage-")
        self.process = subprocess.Popen(
            [sys.executable, "-c", _SERVER, *PRELOAD],
            cwd=BASE_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self._reply(120) == "ready"

    def _reply(self, timeout: float) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            self.close()
            raise subprocess.TimeoutExpired(self.process.args, timeout)
        return self.process.stdout.readline().strip()

    def run(
        self, args: list[str], env: dict[str, str], timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        assert self.process.stdin is not None
        out, err = Path(self.folder.name, "stdout"), Path(self.folder.name, "stderr")
        request = {
            "args": args,
            "env": env,
            "cwd": str(BASE_DIR),
            "stdout": str(out),
            "stderr": str(err),
        }
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        code = int(self._reply(timeout))
        return subprocess.CompletedProcess(
            [sys.executable, "manage.py", *args], code, out.read_text(), err.read_text()
        )

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.folder.cleanup()
