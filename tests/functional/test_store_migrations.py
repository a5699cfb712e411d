"""Numbered migrations: from an empty database and from one made by commit 4379c51 (frozen DDL in
tests/data/store), on SQLite and PostgreSQL, to exactly the schema ``zhijian/store/schema.py`` declares;
two processes starting at once; a failed migration leaves nothing behind; the ``zhijian db`` verbs."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, MetaData, inspect, select, text

from tests.conftest import POSTGRES_URL, missing
from zhijian.cli import main
from zhijian.store import migrations
from zhijian.store.database import Database
from zhijian.store.schema import metadata, schema_version

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "store"
WORKER_LACKED = ("alert_actions", "reviews", "review_marks", "appeal_terms", "reports_published", "users",
                 "sessions", "ingest_sources")  # tables the 4379c51 worker never created (it never imported them)


def wipe(engine: Engine) -> None:
    found = MetaData()
    found.reflect(engine)
    found.drop_all(engine)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database (nothing in it, not even a version table)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/zhijian.db"
        return
    db = Database(POSTGRES_URL)
    try:
        db.ping()
    except Exception as exc:
        missing("PostgreSQL", str(exc))
    wipe(db.engine)
    yield POSTGRES_URL
    wipe(db.engine)
    db.dispose()


@pytest.fixture
def db(url: str) -> Iterator[Database]:
    database = Database(url)
    yield database
    database.dispose()


def describe(engine: Engine) -> dict[str, Any]:
    """What a database holds: per table its columns (type, nullable), primary key, indexes and unique sets."""
    found = inspect(engine)
    out: dict[str, Any] = {}
    for table in sorted(found.get_table_names()):
        columns = {c["name"]: (_kind(c["type"]), bool(c["nullable"])) for c in found.get_columns(table)}
        out[table] = {
            "columns": columns,
            "primary_key": tuple(found.get_pk_constraint(table)["constrained_columns"]),
            "indexes": {i["name"]: tuple(i["column_names"]) for i in found.get_indexes(table)
                        if not i["name"].startswith("sqlite_autoindex") and not i.get("duplicates_constraint")},
            "unique": sorted(tuple(u["column_names"]) for u in found.get_unique_constraints(table)),
        }
    return out


def declared() -> dict[str, Any]:
    """The same description from schema.py."""
    out: dict[str, Any] = {}
    for name, table in sorted(metadata.tables.items()):
        out[name] = {
            "columns": {c.name: (_kind(c.type), bool(c.nullable)) for c in table.columns},
            "primary_key": tuple(c.name for c in table.primary_key.columns),
            "indexes": {i.name: tuple(c.name for c in i.columns) for i in table.indexes},
            "unique": sorted((c.name,) for c in table.columns if c.unique),
        }
    return out


def _kind(kind: Any) -> str:
    """A column type as both dialects reflect it: the generic name, with the length of a string."""
    generic = type(kind.as_generic()).__name__
    generic = {"Double": "Float", "Unicode": "String"}.get(generic, generic)
    length = getattr(kind, "length", None)
    return f"{generic}({length})" if generic == "String" and length else generic


def run_script(conn: Connection, path: Path, *, skip: tuple[str, ...] = ()) -> None:
    body = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("--"))
    for statement in body.split(";\n"):
        if statement.strip() and not any(f" {table} " in f" {statement} ".replace("(", " ") for table in skip):
            conn.exec_driver_sql(statement)


def versions(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(select(schema_version.c.version).order_by(schema_version.c.version)).scalars())


def test_an_empty_database_upgrades_to_exactly_the_declared_schema(db: Database) -> None:
    assert db.version() == 0
    assert db.upgrade() == migrations.HEAD
    assert describe(db.engine) == declared()
    assert versions(db.engine) == [m.version for m in migrations.MIGRATIONS]
    assert db.upgrade() == migrations.HEAD and versions(db.engine) == [m.version for m in migrations.MIGRATIONS]
    db.alerts.save([{"alert_id": "a", "rule": "r", "severity": "critical", "fatal": True, "conversation_id": "c",
                     "shop_id": "s", "message_id": "m", "ts_ms": 1, "detected_at": "t"}])
    assert db.alerts.last_change() == 1  # the sequence row is there: the first change is 1


@pytest.mark.parametrize("made_by", ["api", "worker"])
def test_a_database_made_by_commit_4379c51_upgrades_and_keeps_its_rows(db: Database, made_by: str) -> None:
    script = FIXTURES / f"schema_4379c51.{db.dialect}.sql"
    with db.engine.begin() as conn:
        run_script(conn, script, skip=WORKER_LACKED if made_by == "worker" else ())
        conn.execute(text("INSERT INTO alerts (alert_id, rule, severity, fatal, conversation_id, shop_id, message_id,"
                          " ts_ms, detected_at, payload, revision, seq) VALUES ('old', 'rude', 'critical', true, 'c',"
                          " 's', 'm', 5, 't', '{\"alert_id\": \"old\"}', 2, 7)"))
        conn.execute(text("UPDATE alert_sequence SET value = 7"))
        conn.execute(text("INSERT INTO audit_log (at, actor, action, subject, detail) VALUES ('t', 'qa', 'x', 'y',"
                          " '{}')"))
    assert db.version() == 0  # that code kept no version
    assert db.upgrade() == migrations.HEAD
    assert describe(db.engine) == declared()
    assert db.alerts.get("old") == {"alert_id": "old"} and db.alerts.last_change() == 7
    assert [e["actor"] for e in db.audit.trail("y")] == ["qa"]
    db.alerts.save([{"alert_id": "new", "rule": "r", "severity": "critical", "fatal": True, "conversation_id": "c",
                     "shop_id": "s", "message_id": "m", "ts_ms": 9, "detected_at": "t"}])
    assert [seq for seq, _ in db.alerts.changes(after=0)] == [7, 8]  # the sequence continues where it was


def test_processes_starting_at_once_apply_each_migration_once(url: str) -> None:
    starters = 4
    barrier = threading.Barrier(starters)
    reached: list[int] = []
    failures: list[BaseException] = []

    def start() -> None:
        database = Database(url)  # an engine (and connections) of its own, like another process
        try:
            barrier.wait(timeout=30)
            reached.append(database.upgrade())
        except BaseException as exc:
            failures.append(exc)
        finally:
            database.dispose()

    threads = [threading.Thread(target=start) for _ in range(starters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == [] and reached == [migrations.HEAD] * starters
    checker = Database(url)
    try:
        assert versions(checker.engine) == [m.version for m in migrations.MIGRATIONS]
        assert describe(checker.engine) == declared()
    finally:
        checker.dispose()


def test_a_failing_migration_leaves_the_database_as_it_was(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    db.upgrade()

    def half_done(conn: Connection) -> None:
        conn.exec_driver_sql("CREATE TABLE half_done (id INTEGER PRIMARY KEY)")
        raise RuntimeError("the migration broke halfway")

    broken = migrations.Migration(migrations.HEAD + 1, "broken", half_done)
    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS, broken))
    with pytest.raises(RuntimeError, match="halfway"):
        migrations.upgrade(db.engine, broken.version)
    assert db.version() == migrations.HEAD
    assert "half_done" not in inspect(db.engine).get_table_names()


def test_the_db_verbs_show_and_apply_the_version(url: str, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["db", "current"]) == 0
    assert capsys.readouterr().out == f"schema version 0 (newest {migrations.HEAD}; behind: run zhijian db upgrade)\n"
    assert main(["db", "upgrade"]) == 0
    assert capsys.readouterr().out == f"schema version 0 → {migrations.HEAD}\n"
    assert main(["db", "upgrade"]) == 0
    assert capsys.readouterr().out == f"schema version {migrations.HEAD}: up to date\n"
    assert main(["db", "current"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_every_process_upgrades_through_the_same_migrations() -> None:
    """The API, the worker, the notifier, the rule-set loader and the CLI verbs open the store through
    ``Database.upgrade`` and nothing else creates tables."""
    root = Path(__file__).resolve().parents[2]
    sources = [p for d in ("api", "stream", "zhijian") for p in (root / d).rglob("*.py")
               if "zhijian/store/migrations" not in p.as_posix()]
    creating = [p.relative_to(root).as_posix() for p in sources
                if "create_all(" in p.read_text(encoding="utf-8") or "create_schema(" in p.read_text(encoding="utf-8")]
    assert creating == []
    assert os.path.exists(root / "zhijian" / "store" / "migrations" / "m0001_initial.py")
