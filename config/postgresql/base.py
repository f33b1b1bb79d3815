"""Django's PostgreSQL backend with a health check that costs no round trip.

With ``CONN_HEALTH_CHECKS`` Django checks a persistent connection before each request
uses it, by running ``SELECT 1``: one more round trip and one more statement for the
server to parse and plan, on every request. On the project's 2-core machine that check
cost a third of a trivial database-backed request (bench/README.md). Here the check
looks at the connection's socket instead: a server that has closed the connection (a
restart, a failover, ``pg_terminate_backend``, a proxy dropping it) has left an
end-of-file there, which libpq reads without waiting and turns into a bad connection
status. A connection that went silent without closing passes both checks alike; the
query then fails and Django drops the connection at the end of that request.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg import Error as PsycopgError
from psycopg import pq

_READS = 4


def _readable(fd: int) -> bool:
    """Whether the socket has something to read (data, end-of-file or an error) now."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])  # pragma: no cover (Windows)


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        pgconn = self.connection.pgconn
        try:
            # Between requests the server has nothing to say but a notice, or a goodbye:
            # its last error message ("terminating connection…"), then the end of the
            # stream, where reading raises. A few reads tell which.
            for _ in range(_READS):
                if pgconn.status != pq.ConnStatus.OK or not _readable(pgconn.socket):
                    break
                pgconn.consume_input()
        except (OSError, PsycopgError):
            return False
        return bool(pgconn.status == pq.ConnStatus.OK)
