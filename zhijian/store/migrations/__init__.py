"""Numbered migrations: an ordered list of functions and a ``schema_version`` table.

Every process that opens the store calls ``upgrade`` at start (the API, the worker, the notifier, every CLI
verb), whatever it imported: the schema is the migrations' result, not a side effect of which modules happen
to define tables. ``upgrade`` takes a lock first — ``pg_advisory_xact_lock`` on PostgreSQL, the write lock
(``BEGIN IMMEDIATE``) on SQLite — so two processes starting at once apply each migration exactly once; the
loser waits, then finds the version current. The migrations run inside that one transaction (both dialects
have transactional DDL), so a failed migration leaves the database as it was.

To add a migration: write ``mNNNN_<what>.py`` beside ``m0001_initial.py`` with ``NAME`` and
``upgrade(conn)`` (SQLAlchemy Core on the given connection; a new table is defined in the migration as it is
at that step, on the module's own ``MetaData``, and created with ``table.create(conn)`` — never imported from
``schema.py``, which moves on; never edit an applied migration), append it to ``MIGRATIONS``, and make the
same change in ``schema.py``. ``tests/unit/test_store_migrations.py`` checks that an upgraded
database matches ``schema.py`` on both dialects.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.exc import OperationalError

from zhijian.store.migrations import m0001_initial, m0002_report_versions, m0003_notify_ledger
from zhijian.store.schema import schema_version


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    upgrade: Callable[[Connection], None]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, m0001_initial.NAME, m0001_initial.upgrade),
    Migration(2, m0002_report_versions.NAME, m0002_report_versions.upgrade),
    Migration(3, m0003_notify_ledger.NAME, m0003_notify_ledger.upgrade),
)
HEAD = MIGRATIONS[-1].version
LOCK_KEY = 0x7A68_6A69  # "zhji": the advisory lock every zhijian process takes to migrate


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """One transaction holding the migration lock."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
            yield conn
        return
    # pysqlite starts transactions lazily and not for DDL: take the write lock explicitly, in autocommit mode
    with engine.connect() as plain:
        conn = plain.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.exec_driver_sql("ROLLBACK")
            raise
        conn.exec_driver_sql("COMMIT")


def _version(conn: Connection) -> int:
    return int(conn.execute(select(func.max(schema_version.c.version))).scalar() or 0)


def current(engine: Engine) -> int:
    """The version the database is at (0: empty, or made before versions were kept)."""
    with engine.connect() as conn:
        if not engine.dialect.has_table(conn, schema_version.name):
            return 0
        return _version(conn)


def upgrade(engine: Engine, target: int = HEAD) -> int:
    """Apply every migration above the database's version up to ``target``; returns the version reached."""
    for attempt in range(5):
        try:
            reached = current(engine)
            if reached >= target:  # the usual start: nothing to do, and no write lock taken
                return reached
            return _upgrade(engine, target)
        except OperationalError:  # SQLite: another process held the write lock past the busy timeout
            if engine.dialect.name != "sqlite" or attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _upgrade(engine: Engine, target: int) -> int:
    with _locked(engine) as conn:
        schema_version.create(conn, checkfirst=True)
        version = _version(conn)
        for migration in MIGRATIONS:
            if version < migration.version <= target:
                migration.upgrade(conn)
                conn.execute(schema_version.insert().values(
                    version=migration.version, name=migration.name,
                    applied_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")))
                version = migration.version
        return version
