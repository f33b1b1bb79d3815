"""Django's PostgreSQL backend with a health check that costs no round trip.

With ``CONN_HEALTH_CHECKS`` Django checks a persistent connection before each request
uses it, by running ``SELECT 1``: one more round trip and one more statement for the
server to parse and plan, on every request. On the project's 2-core machine that check
cost a third of a trivial database-backed request (bench/README.md). Between two
requests the server has nothing to say on a healthy connection; when it drops one (a
restart, a failover, ``pg_terminate_backend``, a proxy cutting it) it says goodbye: an
error message, then the end of the stream. So the check looks at the socket first: with
nothing to read, the connection is as the last request left it; with something to read,
Django's own check decides. A connection that went silent without closing passes both
checks alike; its query then fails and Django drops it at the end of that request.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg import pq


def _readable(fd: int) -> bool:
    """Whether the socket has something to read (data, end of stream or an error) now."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])  # pragma: no cover (Windows)


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        pgconn = self.connection.pgconn
        if pgconn.status != pq.ConnStatus.OK:
            return False
        try:
            said_something = _readable(pgconn.socket)
        except OSError:
            return False
        # Something to read between requests is rare (a notice, a goodbye): ask the server.
        return super().is_usable() if said_something else True
