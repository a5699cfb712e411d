"""One engine factory and one upsert for every repository, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.sql.dml import Insert


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use the installed psycopg 3 driver."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=5000")  # first: switching to WAL below must wait for a lock, not fail
    cursor.execute("PRAGMA journal_mode=WAL")  # the API reads while the worker writes
    cursor.close()


def open_engine(url: str) -> Engine:
    """The engine for ``url``: a SQLite file (its folder made, WAL, a busy timeout) or PostgreSQL (psycopg 3)."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def upsert(dialect: str, table: Table, *, keys: Sequence[str], update: Iterable[str] = (),
           where: Callable[[Any], ColumnElement[bool]] | None = None) -> Insert:
    """``INSERT … ON CONFLICT (keys)``: DO NOTHING without ``update``, else DO UPDATE those columns from the
    incoming row, only ``where(excluded)`` holds when given. The same statement on SQLite and PostgreSQL."""
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    columns = list(update)
    if not columns:
        return insert.on_conflict_do_nothing(index_elements=list(keys))
    excluded = insert.excluded
    return insert.on_conflict_do_update(index_elements=list(keys), set_={c: excluded[c] for c in columns},
                                        where=where(excluded) if where is not None else None)


def newest_by(records: Iterable[dict[str, Any]], key: str, rank: str) -> dict[str, dict[str, Any]]:
    """One record per ``key``, the one with the highest ``rank`` (an upsert statement may touch a
    row only once: PostgreSQL refuses ON CONFLICT DO UPDATE on the same key twice)."""
    newest: dict[str, dict[str, Any]] = {}
    for record in records:
        kept = newest.get(record[key])
        if kept is None or int(record.get(rank, 0)) > int(kept.get(rank, 0)):
            newest[record[key]] = record
    return newest
