"""The durable record, in SQL: a SQLite file by default, PostgreSQL by URL.

The embedded broker keeps nothing on disk, so whatever must survive a restart of the
whole stack lives here. Writes are idempotent (keyed by ``alert_id``): replaying the
same events leaves the same rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

metadata = MetaData()

alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", String(64), primary_key=True),
    Column("rule", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("fatal", Boolean, nullable=False),
    Column("conversation_id", String(128), nullable=False),
    Column("shop_id", String(128), nullable=False),
    Column("agent_id", String(128)),
    Column("team_id", String(128)),
    Column("message_id", String(128), nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("detected_at", String(40), nullable=False),
    Column("payload", Text, nullable=False),
)
Index("ix_alerts_ts", alerts.c.ts_ms)

# Every rule set a QA lead published, newest revision wins. The broker topic only carries
# the change to running workers; this table is the record (and who changed what, when).
rule_sets = Table(
    "rule_sets",
    metadata,
    Column("revision", BigInteger, primary_key=True, autoincrement=False),
    Column("version", String(64), nullable=False),
    Column("digest", String(32), nullable=False),
    Column("author", String(128), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("document", Text, nullable=False),
)
Index("ix_alerts_agent_ts", alerts.c.agent_id, alerts.c.ts_ms)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # the API reads while the worker writes
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use the installed psycopg 3 driver."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class Store:
    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(self.url, pool_pre_ping=True)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)

    def create_schema(self) -> None:
        metadata.create_all(self.engine)

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def save_alerts(self, records: Iterable[dict[str, Any]]) -> int:
        """Insert alerts, ignoring ones already stored. Returns how many were new."""
        rows = [
            {
                "alert_id": r["alert_id"],
                "rule": r["rule"],
                "severity": r["severity"],
                "fatal": bool(r["fatal"]),
                "conversation_id": r["conversation_id"],
                "shop_id": r["shop_id"],
                "agent_id": r.get("agent_id"),
                "team_id": r.get("team_id"),
                "message_id": r["message_id"],
                "ts_ms": int(r["ts_ms"]),
                "detected_at": r["detected_at"],
                "payload": json.dumps(r, ensure_ascii=False, separators=(",", ":")),
            }
            for r in records
        ]
        if not rows:
            return 0
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        statement = (
            insert(alerts).on_conflict_do_nothing(index_elements=["alert_id"]).returning(alerts.c.alert_id)
        )
        with self.engine.begin() as conn:
            inserted = conn.execute(statement, rows).all()
        return len(inserted)

    def recent_alerts(
        self, *, limit: int = 100, before_ms: int | None = None, since_ms: int | None = None
    ) -> list[dict[str, Any]]:
        """Newest first."""
        query = select(alerts.c.payload).order_by(alerts.c.ts_ms.desc(), alerts.c.alert_id)
        if before_ms is not None:
            query = query.where(alerts.c.ts_ms < before_ms)
        if since_ms is not None:
            query = query.where(alerts.c.ts_ms >= since_ms)
        with self.engine.connect() as conn:
            payloads: Sequence[str] = conn.execute(query.limit(limit)).scalars().all()
        return [json.loads(p) for p in payloads]

    def count_alerts(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(alerts)).scalar_one())

    def save_ruleset(self, document: dict[str, Any], *, author: str, created_at: str,
                     make: Any) -> tuple[int, dict[str, Any]]:
        """Store ``document`` as the next revision. ``make(document, revision)`` returns the
        final document and its digest (it stamps revision and version, and validates)."""
        for _ in range(5):  # two publishers racing for the same revision: retry with the next
            with self.engine.begin() as conn:
                latest = conn.execute(select(func.max(rule_sets.c.revision))).scalar() or 0
                revision = int(latest) + 1
                final, digest = make(document, revision)
                try:
                    conn.execute(rule_sets.insert().values(
                        revision=revision, version=final["version"], digest=digest, author=author,
                        created_at=created_at, document=json.dumps(final, ensure_ascii=False, sort_keys=True)))
                except IntegrityError:
                    continue
            return revision, final
        raise RuntimeError("could not allocate a rule-set revision")

    def latest_ruleset(self) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(rule_sets.c.document).order_by(rule_sets.c.revision.desc()).limit(1)).first()
        return json.loads(row[0]) if row else None

    def ruleset_history(self, limit: int = 50) -> list[dict[str, Any]]:
        columns = (rule_sets.c.revision, rule_sets.c.version, rule_sets.c.digest, rule_sets.c.author,
                   rule_sets.c.created_at)
        with self.engine.connect() as conn:
            rows = conn.execute(select(*columns).order_by(rule_sets.c.revision.desc()).limit(limit)).all()
        return [dict(row._mapping) for row in rows]

    def dispose(self) -> None:
        self.engine.dispose()
