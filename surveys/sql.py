"""Hand-written SQL for the two requests every participant makes: opening their link and
submitting it.

Why not the ORM here: on the project's 2-core machine, *compiling* the equivalent
querysets (joins, ordering, annotations) cost more CPU than running them — about 1.5 ms
for the token lookup alone, several times the round trip — and a submission made eight
such queries. These statements are fixed strings, built once per database vendor from
the models' own table and column names, and their rows become ordinary model instances
(``Model.from_db``, with the backend's converters applied as the ORM would), so callers
cannot tell the difference. Everything else in the project uses the ORM.

The statements are assembled from the models' quoted table and column names only; every
value is a query parameter (hence the S608 exemption below).
"""

# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache, partial
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Model

from .models import Instrument, Participant, Response, Site, Study

M = TypeVar("M", bound=Model)

try:  # psycopg 3 (production); the embedded mode may run without it
    from psycopg import Cursor as _server_cursor

    _PREPARING: tuple[type, ...] = (_server_cursor,)
except ImportError:  # pragma: no cover
    _PREPARING = ()

Converter = Callable[[Any], Any]


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


@contextmanager
def _cursor() -> Iterator[Any]:
    """A cursor for these statements. On PostgreSQL, one that binds parameters on the
    server, so that psycopg *prepares* each statement once per connection (connections
    live ``CONN_MAX_AGE``): parsing and planning the token lookup cost the server three
    times as much CPU as running it. Elsewhere, and whenever Django records queries
    (``DEBUG``, tests counting queries), Django's own cursor."""
    if connection.vendor != "postgresql" or connection.queries_logged:
        with connection.cursor() as cursor:
            yield cursor
        return
    # What ``connection.cursor()`` does first: the health check, then connect if needed.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors, _server_cursor(connection.connection) as cursor:
        yield cursor


def _execute(cursor: Any, sql: str, params: Sequence[Any]) -> None:
    if isinstance(cursor, _PREPARING):
        cursor.execute(sql, params, prepare=True)  # type: ignore[attr-defined]
    else:
        cursor.execute(sql, params)


def _converters(field: Any, column: Any) -> list[Converter]:
    """What the ORM applies to a column's raw value (SQLite returns datetimes as text)."""
    found = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
    return [partial(_apply, convert, column) for convert in found]


def _apply(convert: Any, column: Any, value: Any) -> Any:
    return convert(value, column, connection)


class _Columns:
    """A model's concrete columns under a table alias, and how to turn a row slice back
    into an instance with the values the ORM would have given."""

    def __init__(self, model: type[Model], alias: str) -> None:
        self.model = model
        self.fields = list(model._meta.concrete_fields)
        self.names = [f.attname for f in self.fields]
        self.sql = ", ".join(f"{alias}.{_quote(f.column)}" for f in self.fields)
        self.converters: list[list[Converter]] = []
        for f in self.fields:
            column = f.get_col(alias)
            self.converters.append(_converters(f, column))

    def __len__(self) -> int:
        return len(self.fields)

    def build(self, row: Sequence[Any]) -> Model:
        values = list(row)
        for i, converters in enumerate(self.converters):
            for convert in converters:
                values[i] = convert(values[i])
        return self.model.from_db(connection.alias, self.names, values)


@cache
def _participant_statement(vendor: str, with_response: bool) -> tuple[str, list[_Columns]]:
    """The participant of a token hash with site, study, the study's current instrument
    (id and publication time: the key of its kept form) and optionally the response."""
    parts = [
        _Columns(Participant, "p"),
        _Columns(Site, "s"),
        _Columns(Study, "st"),
    ]
    if with_response:
        parts += [_Columns(Response, "r"), _Columns(Instrument, "ri")]
    current = (
        f"SELECT {{column}} FROM {_quote(Instrument._meta.db_table)} ci "
        f"WHERE ci.{_quote('study_id')} = st.{_quote('id')} AND ci.{_quote('status')} = %s "
        f"ORDER BY ci.{_quote('version')} DESC LIMIT 1"
    )
    select = ", ".join(c.sql for c in parts)
    select += f", ({current.format(column='ci.' + _quote('id'))})"
    select += f", ({current.format(column='ci.' + _quote('published_at'))})"
    joins = (
        f"{_quote(Participant._meta.db_table)} p "
        f"JOIN {_quote(Site._meta.db_table)} s ON s.{_quote('id')} = p.{_quote('site_id')} "
        f"JOIN {_quote(Study._meta.db_table)} st ON st.{_quote('id')} = s.{_quote('study_id')}"
    )
    if with_response:
        joins += (
            f" LEFT JOIN {_quote(Response._meta.db_table)} r"
            f" ON r.{_quote('participant_id')} = p.{_quote('id')}"
            f" LEFT JOIN {_quote(Instrument._meta.db_table)} ri"
            f" ON ri.{_quote('id')} = r.{_quote('instrument_id')}"
        )
    sql = (
        f"SELECT {select} FROM {joins} "
        f"WHERE p.{_quote('token_hash')} = %s AND p.{_quote('status')} = %s"
    )
    return sql, parts


def participant_by_token_hash(token_hash: str, *, with_response: bool) -> Participant | None:
    """The active participant with this token hash, their site and study; the study's
    current instrument as ``current_instrument_id`` and
    ``current_instrument_published_at``; with ``with_response``, their response (or
    ``None``) cached on ``participant.response``."""
    sql, parts = _participant_statement(connection.vendor, with_response)
    published = Instrument.Status.PUBLISHED
    with _cursor() as cursor:
        _execute(cursor, sql, [published, published, token_hash, Participant.Status.ACTIVE.value])
        row = cursor.fetchone()
    if row is None:
        return None
    objects = []
    start = 0
    for columns in parts:
        chunk = row[start : start + len(columns)]
        start += len(columns)
        objects.append(None if chunk[0] is None else columns.build(chunk))
    participant, site, study = objects[:3]
    assert isinstance(participant, Participant) and isinstance(site, Site)
    site.study = study  # type: ignore[assignment]
    participant.site = site
    current_id, current_published_at = row[start], row[start + 1]
    if current_published_at is not None:
        current_published_at = _convert_datetime(current_published_at)
    participant.current_instrument_id = current_id  # type: ignore[attr-defined]
    participant.current_instrument_published_at = current_published_at  # type: ignore[attr-defined]
    if with_response:
        response, instrument = objects[3], objects[4]
        if response is not None:
            response.instrument = instrument  # type: ignore[attr-defined]
            response.participant = participant  # type: ignore[attr-defined]
        # The reverse one-to-one's cache: ``participant.response`` without a query.
        Participant.response.related.set_cached_value(participant, response)  # type: ignore[attr-defined]
    return participant


def _convert_datetime(value: Any) -> Any:
    """A scalar subquery's value has no field to convert it: use ``published_at``'s."""
    field = Instrument._meta.get_field("published_at")
    for convert in _converters(field, field.get_col("ci")):  # type: ignore[union-attr]
        value = convert(value)
    return value


@cache
def _response_statement(vendor: str) -> tuple[str, list[_Columns]]:
    parts = [_Columns(Response, "r"), _Columns(Instrument, "ri")]
    sql = (
        f"SELECT {parts[0].sql}, {parts[1].sql} FROM {_quote(Response._meta.db_table)} r "
        f"JOIN {_quote(Instrument._meta.db_table)} ri "
        f"ON ri.{_quote('id')} = r.{_quote('instrument_id')} "
        f"WHERE r.{_quote('participant_id')} = %s"
    )
    return sql, parts


def lock_participant_and_read_response(participant: Participant) -> Response | None:
    """Lock the participant's row (where the database has row locks; SQLite's writers are
    serialised by its IMMEDIATE transactions), then read their response with its
    instrument. Call inside a transaction.

    Two statements on purpose: under READ COMMITTED a row joined in the locking
    statement would be read from before a concurrent holder of the lock committed (a
    double tap that has just submitted, say); the second statement sees that commit."""
    table = _quote(Participant._meta.db_table)
    lock = f"SELECT {_quote('id')} FROM {table} WHERE {_quote('id')} = %s"
    if connection.features.has_select_for_update:
        lock += " FOR UPDATE"
    sql, (response_columns, instrument_columns) = _response_statement(connection.vendor)
    with _cursor() as cursor:
        _execute(cursor, lock, [participant.pk])
        cursor.fetchone()
        _execute(cursor, sql, [participant.pk])
        row = cursor.fetchone()
    if row is None:
        return None
    response = response_columns.build(row[: len(response_columns)])
    response.instrument = instrument_columns.build(row[len(response_columns) :])  # type: ignore[attr-defined]
    response.participant = participant  # type: ignore[attr-defined]
    return response  # type: ignore[return-value]


def insert(instance: M) -> M:
    """INSERT one new instance and set its primary key: ``instance.save()`` for a model
    without signals that matter here, minus the statement's compilation."""
    model = type(instance)
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    table = _quote(model._meta.db_table)
    columns = ", ".join(_quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"
    returning = connection.features.can_return_columns_from_insert
    if returning:
        sql += f" RETURNING {_quote(model._meta.pk.column)}"  # type: ignore[union-attr]
    with _cursor() as cursor:
        _execute(cursor, sql, values)
        instance.pk = cursor.fetchone()[0] if returning else cursor.lastrowid
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


def insert_rows(model: type[Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """INSERT many rows of ``model`` given as values of the named fields (attnames), in one
    statement: ``bulk_create`` without building an instance per row."""
    if not rows:
        return
    fields = [model._meta.get_field(name) for name in columns]
    table = _quote(model._meta.db_table)
    names = ", ".join(_quote(f.column) for f in fields)  # type: ignore[union-attr, arg-type]
    one = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params = [
        f.get_db_prep_save(value, connection)  # type: ignore[union-attr]
        for row in rows
        for f, value in zip(fields, row, strict=True)
    ]
    with _cursor() as cursor:
        values = ", ".join([one] * len(rows))
        _execute(cursor, f"INSERT INTO {table} ({names}) VALUES {values}", params)


@cache
def _record_statement(vendor: str, model: type[Model], where: str) -> str:
    historical: Any = model.history.model  # type: ignore[attr-defined]
    tracked = [_quote(f.column) for f in historical.tracked_fields]
    extra = [_quote(c) for c in ("history_date", "history_type", "history_change_reason")]
    extra.append(_quote("history_user_id"))
    return (
        f"INSERT INTO {_quote(historical._meta.db_table)} ({', '.join(tracked + extra)}) "
        f"SELECT {', '.join(tracked)}, %s, '+', %s, NULL "
        f"FROM {_quote(model._meta.db_table)} WHERE {_quote(where)} = %s"
    )


def record_created(model: type[Model], where: str, value: Any, *, reason: str, when: Any) -> None:
    """The history rows (simple-history's, as ``surveys.audit`` writes them) of the rows of
    ``model`` whose ``where`` column is ``value``, recorded as created by nobody (a
    participant) for ``reason``: one INSERT … SELECT, copying the rows as stored."""
    sql = _record_statement(connection.vendor, model, where)
    with _cursor() as cursor:
        _execute(cursor, sql, [connection.ops.adapt_datetimefield_value(when), reason, value])
