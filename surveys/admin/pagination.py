"""Paging long lists without counting every row on every page view.

The participant and response lists of a national study hold a million rows: an exact
``COUNT(*)`` costs a scan of them each time a page is shown (with the site scope's
semi-join), more than the page itself. Where the planner expects many rows, the count
shown is PostgreSQL's estimate, and the page says so ("about N"); a short list (a search,
a site's filter) is counted exactly. On SQLite (the embedded mode's small studies) the
count is always exact.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

from django.core.paginator import Paginator
from django.db import connections

# Below this many expected rows the exact count is cheap enough (an index scan of a few
# thousand entries); above it the estimate is within a few per cent of it.
EXACT_BELOW = 50_000


def planner_rows(queryset: Any) -> int | None:
    """The number of rows PostgreSQL's planner expects ``queryset`` to return, from
    ``EXPLAIN`` (planning only: nothing is read), or ``None`` elsewhere."""
    if connections[queryset.db].vendor != "postgresql":
        return None
    text = queryset.order_by().explain(format="json")
    if not text:  # a query Django knows to be empty (no site in scope): no statement
        return 0
    return int(json.loads(text)[0]["Plan"]["Plan Rows"])


class EstimatedCountPaginator(Paginator):
    """A paginator whose ``count`` is the planner's estimate when that is large
    (``estimated`` is then true: the page says "about")."""

    estimated = False

    @cached_property
    def count(self) -> int:
        object_list: Any = self.object_list  # a QuerySet in the admin's lists
        if not hasattr(object_list, "explain"):
            return super().count
        expected = planner_rows(object_list)
        if expected is None:  # not PostgreSQL: exact
            return super().count
        if expected < EXACT_BELOW:
            # Counted exactly, but never more than EXACT_BELOW rows: should the planner
            # have underestimated, a long list is still not read to its end.
            counted = object_list[:EXACT_BELOW].count()
            if counted < EXACT_BELOW:
                return counted
        self.estimated = True
        return max(expected, EXACT_BELOW)
