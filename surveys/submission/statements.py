"""The hand-written SQL of the submission pipeline: the token lookup every participant's
request starts with, the read of a draft's answers, and the two one-statement writes of
PostgreSQL (``create``, ``submit_draft``).

Why not the ORM here: on the project's 2-core machine, *compiling* the equivalent
querysets (joins, ordering, annotations) cost more CPU than running them — about 1.5 ms
for the token lookup alone, several times the round trip — and a submission made eight
such queries. These statements are fixed strings, built once per database vendor from
the models' own table and column names, and their rows become ordinary model instances
(``Model.from_db``, with the backend's converters applied as the ORM would), so callers
cannot tell the difference. Everything else in the project uses the ORM, the pipeline's
general path included (``pipeline.py``).

The statements are assembled from the models' quoted table and column names only; every
value is a query parameter (hence the S608 exemption below).
"""

# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model

from ..answers import ANSWER_COLUMNS
from ..models import Answer, Instrument, LegacyLink, Participant, Response, Site, Study
from .records import CHANGED, CREATED, history_insert

M = TypeVar("M", bound=Model)

try:  # psycopg 3 (production); the embedded mode may run without it
    from psycopg import Cursor as ServerCursor
except ImportError:  # pragma: no cover
    ServerCursor = None  # type: ignore[assignment, misc]

Converter = Callable[[Any, Any, Any], Any]


class Statements:
    """Runs the statements of one operation on one cursor.

    On PostgreSQL the cursor binds parameters on the server, so that psycopg *prepares*
    each statement once per connection (connections live ``CONN_MAX_AGE``): parsing and
    planning the token lookup cost the server three times as much CPU as running it.
    Elsewhere, and whenever Django records queries (``DEBUG``, tests counting queries),
    it is Django's own cursor."""

    def __init__(self, db: BaseDatabaseWrapper, cursor: Any, prepare: bool) -> None:
        self.db = db
        self.cursor = cursor
        self.prepare = prepare

    def run(self, sql: str, params: Sequence[Any]) -> Any:
        if self.prepare:
            self.cursor.execute(sql, params, prepare=True)
        else:
            self.cursor.execute(sql, params)
        return self.cursor


@contextmanager
def statements() -> Iterator[Statements]:
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor == "postgresql" and not db.queries_logged and ServerCursor is not None:
        # What ``db.cursor()`` does first: the health check, then connect if needed.
        db.close_if_health_check_failed()
        db.ensure_connection()
        # Django leaves preparing off unless OPTIONS say otherwise (config/settings.py:
        # DATABASE_PREPARED_STATEMENTS).
        if db.connection.prepare_threshold is not None:
            with db.wrap_database_errors, ServerCursor(db.connection) as cursor:
                yield Statements(db, cursor, prepare=True)
            return
    with db.cursor() as cursor:
        yield Statements(db, cursor, prepare=False)


# --- Reading rows back into models ----------------------------------------------------


class _Columns:
    """A model's concrete columns under a table alias, and how to turn a row slice back
    into an instance with the values the ORM would have given (SQLite, for one, returns
    datetimes as text)."""

    def __init__(self, db: BaseDatabaseWrapper, model: type[Model], alias: str) -> None:
        self.model = model
        self.alias = db.alias
        fields = list(model._meta.concrete_fields)
        self.names = [f.attname for f in fields]
        self.sql = ", ".join(f"{alias}.{db.ops.quote_name(f.column)}" for f in fields)
        self.converters: list[tuple[int, Converter, Any]] = []
        for i, f in enumerate(fields):
            column = f.get_col(alias)
            found = db.ops.get_db_converters(column) + f.get_db_converters(db)  # type: ignore[attr-defined]
            self.converters += [(i, convert, column) for convert in found]

    def __len__(self) -> int:
        return len(self.names)

    def build(self, db: BaseDatabaseWrapper, row: Sequence[Any]) -> Model:
        values = list(row)
        for i, convert, column in self.converters:
            values[i] = convert(values[i], column, db)
        return self.model.from_db(self.alias, self.names, values)


def _convert_published_at(db: BaseDatabaseWrapper, value: Any) -> Any:
    """A scalar subquery's value has no field to convert it: use ``published_at``'s."""
    field: Any = Instrument._meta.get_field("published_at")
    column = field.get_col("ci")
    for convert in db.ops.get_db_converters(column) + field.get_db_converters(db):
        value = convert(value, column, db)
    return value


# --- The participant of a link --------------------------------------------------------


@cache
def _link_statement(alias: str, by: str) -> tuple[str, list[_Columns]]:
    """The participant (by ``token_hash``, active only; or by ``id``) with their site,
    study and response (with its instrument), and the id and publication time of the
    study's current instrument (the key of its kept form)."""
    db = connections[alias]
    q = db.ops.quote_name
    parts = [_Columns(db, Participant, "p"), _Columns(db, Site, "s"), _Columns(db, Study, "st")]
    parts += [_Columns(db, Response, "r"), _Columns(db, Instrument, "ri")]
    current = (
        f"SELECT {{column}} FROM {q(Instrument._meta.db_table)} ci "
        f"WHERE ci.{q('study_id')} = st.{q('id')} AND ci.{q('status')} = %s "
        f"ORDER BY ci.{q('version')} DESC LIMIT 1"
    )
    select = ", ".join(c.sql for c in parts)
    select += f", ({current.format(column='ci.' + q('id'))})"
    select += f", ({current.format(column='ci.' + q('published_at'))})"
    joins = (
        f"{q(Participant._meta.db_table)} p "
        f"JOIN {q(Site._meta.db_table)} s ON s.{q('id')} = p.{q('site_id')} "
        f"JOIN {q(Study._meta.db_table)} st ON st.{q('id')} = s.{q('study_id')} "
        f"LEFT JOIN {q(Response._meta.db_table)} r ON r.{q('participant_id')} = p.{q('id')} "
        f"LEFT JOIN {q(Instrument._meta.db_table)} ri ON ri.{q('id')} = r.{q('instrument_id')}"
    )
    if by == "legacy_hash":
        # A link from before links were derived (``LegacyLink``): only asked when the
        # participant's own hash found nobody, so the statement above stays as it was.
        legacy = (
            f"SELECT l.{q('participant_id')} FROM {q(LegacyLink._meta.db_table)} l "
            f"WHERE l.{q('token_hash')} = %s"
        )
        where = f"p.{q('id')} = ({legacy}) AND p.{q('status')} = %s"
        return f"SELECT {select} FROM {joins} WHERE {where}", parts
    sql = f"SELECT {select} FROM {joins} WHERE p.{q(by)} = %s"
    if by == "token_hash":
        sql += f" AND p.{q('status')} = %s"
    return sql, parts


LinkRow = tuple[Participant, Response | None, int | None, Any]


def link_row(
    *,
    token_hash: str | None = None,
    participant_id: int | None = None,
    legacy_hash: str | None = None,
) -> LinkRow | None:
    """The participant of an active link's token hash (or of an earlier link's kept
    hash, ``legacy_hash``; or any participant by id): the participant with site and
    study, their response (or ``None``) with its instrument, and the id and publication
    time of the study's current instrument (``None``: none is published).
    ``lookup.Link`` is what callers get."""
    published = Instrument.Status.PUBLISHED.value
    with statements() as run:
        if token_hash is not None:
            sql, parts = _link_statement(run.db.alias, "token_hash")
            params: list[Any] = [published, published, token_hash, Participant.Status.ACTIVE.value]
        elif legacy_hash is not None:
            sql, parts = _link_statement(run.db.alias, "legacy_hash")
            params = [published, published, legacy_hash, Participant.Status.ACTIVE.value]
        else:
            sql, parts = _link_statement(run.db.alias, "id")
            params = [published, published, participant_id]
        row = run.run(sql, params).fetchone()
        if row is None:
            return None
        objects: list[Any] = []
        start = 0
        for columns in parts:
            chunk = row[start : start + len(columns)]
            start += len(columns)
            objects.append(None if chunk[0] is None else columns.build(run.db, chunk))
        current_id, current_published_at = row[start], row[start + 1]
        if current_published_at is not None:
            current_published_at = _convert_published_at(run.db, current_published_at)
    participant, site, study, response, instrument = objects
    # Forward relations, as ``select_related`` would set them (not ``response.participant``:
    # setting a one-to-one also fills the participant's reverse cache).
    site.study = study
    participant.site = site
    if response is not None:
        response.instrument = instrument
    return participant, response, current_id, current_published_at


# --- The answers of a draft -------------------------------------------------------------

ANSWER_READ = ("question_id", "choice_id", "text_value", "number_value", "recorded")


@cache
def _answers_statement(alias: str) -> str:
    q = connections[alias].ops.quote_name
    columns = ", ".join(q(c) for c in ANSWER_READ)
    return f"SELECT {columns} FROM {q(Answer._meta.db_table)} WHERE {q('response_id')} = %s"


def answer_values_of(run: Statements, response_id: int) -> list[tuple[Any, ...]]:
    """A stored response's answers as (question_id, choice_id, text_value, number_value,
    recorded): the last says whether the history holds the row yet."""
    return [
        (*row[:4], bool(row[4])) for row in run.run(_answers_statement(run.db.alias), [response_id])
    ]


# --- Building blocks of the writes ------------------------------------------------------


@cache
def _insert_statement(alias: str, model: type[Model]) -> tuple[str, list[Any]]:
    """INSERT of one row of ``model`` (every column but the primary key) and its fields."""
    q = connections[alias].ops.quote_name
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(q(f.column) for f in fields)
    sql = (
        f"INSERT INTO {q(model._meta.db_table)} ({columns}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    return sql, fields


def _insert_values(run: Statements, instance: Model, fields: list[Any]) -> list[Any]:
    return [f.get_db_prep_save(f.pre_save(instance, True), run.db) for f in fields]


def _stored(run: Statements, instance: M, pk: Any) -> M:
    """``instance`` as ``save()`` leaves it once its row is inserted."""
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = run.db.alias
    return instance


@cache
def _update_statement(alias: str, model: type[Model], names: tuple[str, ...]) -> str:
    q = connections[alias].ops.quote_name
    fields = [model._meta.get_field(name) for name in names]
    assignments = ", ".join(f"{q(f.column)} = %s" for f in fields)  # type: ignore[union-attr, arg-type]
    pk = q(model._meta.pk.column)  # type: ignore[union-attr]
    return f"UPDATE {q(model._meta.db_table)} SET {assignments} WHERE {pk} = %s"


def _update_values(run: Statements, instance: Model, names: tuple[str, ...]) -> list[Any]:
    """The named fields' values, as ``save(update_fields=...)`` would write them
    (``auto_now`` fields are set here)."""
    fields: list[Any] = [type(instance)._meta.get_field(name) for name in names]
    return [f.get_db_prep_save(f.pre_save(instance, False), run.db) for f in fields]


# --- A whole write in one statement (PostgreSQL) --------------------------------------
#
# A participant's first save or submission, and the submission of a draft as it was
# autosaved, each take one statement on PostgreSQL: the writes and their history rows
# chained by data-modifying WITH clauses, in autocommit (one statement is one
# transaction). Against the same writes as separate statements inside BEGIN … COMMIT,
# that saves five or six round trips, each costing both processes a wake-up; on the
# project's two cores the round trips, not the writes, were most of a submission's
# database time (bench/README.md). Other databases take the general path in
# ``pipeline.py``, which needs no such statement.


def can_write_in_one_statement() -> bool:
    """Whether ``create`` and ``submit_draft`` can run here (data-modifying WITH)."""
    return connections[DEFAULT_DB_ALIAS].vendor == "postgresql"


@cache
def _create_statement(alias: str) -> tuple[str, list[Any]]:
    db = connections[alias]
    q = db.ops.quote_name
    insert_response, fields = _insert_statement(alias, Response)
    # The answers' columns but the response's, whose id the statement inserts itself.
    values: list[Any] = [Answer._meta.get_field(name) for name in ANSWER_COLUMNS[1:]]
    names = ", ".join(q(f.column) for f in values)
    # One array per answer column: the statement stays the same (and prepared) whatever
    # the number of answers.
    arrays = ", ".join(f"%s::{f.db_type(db)}[]" for f in values)
    sql = (
        f"WITH r AS ({insert_response} "
        f"ON CONFLICT ({q('participant_id')}) DO NOTHING RETURNING *), "
        f"a AS (INSERT INTO {q(Answer._meta.db_table)} ({q('response_id')}, {names}) "
        f"SELECT r.{q('id')}, v.* FROM r, unnest({arrays}) AS v({names}) RETURNING *), "
        f"rh AS ({history_insert(db, Response, 'r', CREATED)}), "
        f"ah AS ({history_insert(db, Answer, 'a', CREATED)}) "
        f"SELECT r.{q('id')} FROM r"
    )
    return sql, fields


def create(
    run: Statements,
    response: Response,
    answers: Sequence[Sequence[Any]],
    *,
    reason: str,
    when: Any,
) -> Response | None:
    """INSERT a participant's new response, its answers (rows of question, choice, text and
    number ids and values) and the history of both (created, for ``reason``), in one
    statement. ``None``, and nothing written, if the participant has a response already
    or a concurrent request is making one (``ON CONFLICT DO NOTHING`` waits for it)."""
    sql, fields = _create_statement(run.db.alias)
    values = _insert_values(run, response, fields)
    columns = [list(column) for column in zip(*answers, strict=True)] or [[]] * 4
    stamp = run.db.ops.adapt_datetimefield_value(when)
    row = run.run(sql, [*values, *columns, stamp, reason, stamp, reason]).fetchone()
    return None if row is None else _stored(run, response, row[0])


@cache
def _submit_draft_statement(alias: str, names: tuple[str, ...]) -> str:
    db = connections[alias]
    q = db.ops.quote_name
    # The participant's row lock is the one every other write of their response takes
    # first (``pipeline._lock``): a draft save that holds it has not
    # necessarily touched the response row yet, and must finish before this decides.
    locked = (
        f"EXISTS (SELECT 1 FROM {q(Participant._meta.db_table)} WHERE {q('id')} = %s FOR UPDATE)"
    )
    # The draft's answers that autosaves stored unrecorded (``records.py``) are
    # recorded as the draft stood when last saved, before the submission's own record.
    answers = q(Answer._meta.db_table)
    draft = (
        f"{history_insert(db, Answer, answers, CREATED)} WHERE {answers}.{q('response_id')} = %s "
        f"AND NOT {answers}.{q('recorded')} AND EXISTS (SELECT 1 FROM u)"
    )
    return (
        f"WITH u AS ({_update_statement(alias, Response, names)} "
        f"AND {q('status')} = %s AND {q('updated_at')} = %s AND {locked} RETURNING *), "
        f"h AS ({history_insert(db, Response, 'u', CHANGED)}), "
        f"d AS ({draft}) "
        f"SELECT u.{q('id')} FROM u"
    )


def submit_draft(
    run: Statements,
    response: Response,
    names: tuple[str, ...],
    *,
    seen: Any,
    reason: str,
    draft_reason: str,
) -> bool:
    """UPDATE the named fields of a draft (``auto_now`` fields are set here) and record the
    change, in one statement, provided it is still the draft that was read: a draft, last
    changed at ``seen`` (its ``updated_at`` then). Answers not yet recorded are recorded
    first, at ``seen`` for ``draft_reason``. ``False``, and nothing written, if it is not
    that draft: it was submitted or saved again meanwhile, or is being."""
    sql = _submit_draft_statement(run.db.alias, names)
    values = _update_values(run, response, names)
    adapt = run.db.ops.adapt_datetimefield_value
    stamp = adapt(response.updated_at)
    draft = Response.Status.DRAFT.value
    params = [*values, response.pk, draft, adapt(seen), response.participant_id]
    params += [stamp, reason, adapt(seen), draft_reason, response.pk]
    return run.run(sql, params).fetchone() is not None
