"""The durable record, in SQL: a SQLite file by default, PostgreSQL by URL.

The embedded broker keeps nothing on disk, so whatever must survive a restart of the
whole stack lives here. Writes are idempotent (keyed by ``alert_id``): replaying the
same events leaves the same rows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

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
    # customer_waiting alerts change (warning → critical → cleared) under one alert_id
    Column("revision", Integer, nullable=False, server_default="0"),
    # the change sequence: every insert and every revision update takes the next value (see save_alerts)
    Column("seq", BigInteger, nullable=False, server_default="0"),
)
Index("ix_alerts_ts", alerts.c.ts_ms)
Index("ix_alerts_seq", alerts.c.seq)

# One row: the last alert change sequence number handed out. Writers take it first in their
# transaction (a row lock on PostgreSQL, the write lock on SQLite), so sequence numbers become
# visible in commit order: a reader that sees change N has every change below N.
alert_sequence = Table(
    "alert_sequence",
    metadata,
    Column("name", String(16), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# The latest snapshot of every conversation; once closed, its summary with the transcript.
conversations = Table(
    "conversations",
    metadata,
    Column("conversation_id", String(128), primary_key=True),
    Column("shop_id", String(128), nullable=False),
    Column("team_id", String(128)),
    Column("agent_id", String(128)),
    Column("status", String(16), nullable=False),
    Column("opened_ms", BigInteger),
    Column("closed_ms", BigInteger),
    Column("waiting_since_ms", BigInteger),
    Column("version", BigInteger, nullable=False),
    Column("final", Boolean, nullable=False),
    Column("payload", Text, nullable=False),
)
Index("ix_conversations_status", conversations.c.status, conversations.c.waiting_since_ms)
Index("ix_conversations_agent", conversations.c.agent_id, conversations.c.opened_ms)
Index("ix_conversations_team", conversations.c.team_id, conversations.c.opened_ms)

# The transcript: every event of every conversation with its text and its findings' spans (the live
# state holds no texts). Written from the transcript topic; idempotent by (conversation, message).
messages = Table(
    "messages",
    metadata,
    Column("conversation_id", String(128), primary_key=True),
    Column("message_id", String(128), primary_key=True),
    Column("ts_ms", BigInteger, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("sender", String(16), nullable=False),
    Column("agent_id", String(128)),
    Column("text", Text, nullable=False),
    Column("late", Boolean, nullable=False),
    Column("ruleset", String(64), nullable=False),
    Column("marks", Text, nullable=False),  # [[label, start, end], ...]
)
Index("ix_messages_ts", messages.c.conversation_id, messages.c.ts_ms)

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


def newest_by(records: Iterable[dict[str, Any]], key: str, rank: str) -> dict[str, dict[str, Any]]:
    """One record per ``key``, the one with the highest ``rank`` (an upsert statement may touch a
    row only once: PostgreSQL refuses ON CONFLICT DO UPDATE on the same key twice)."""
    newest: dict[str, dict[str, Any]] = {}
    for record in records:
        kept = newest.get(record[key])
        if kept is None or int(record.get(rank, 0)) > int(kept.get(rank, 0)):
            newest[record[key]] = record
    return newest


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
        # processes started together race between "does it exist" and "create": the loser retries, and then
        # finds the tables the winner made
        for attempt in range(5):
            try:
                metadata.create_all(self.engine)
                break
            except (OperationalError, ProgrammingError, IntegrityError):
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
        with self.engine.begin() as conn:  # databases made by 0.1.0 lack the revision and seq columns
            columns = {c["name"] for c in inspect(conn).get_columns("alerts")}
            if "revision" not in columns:
                conn.execute(text("ALTER TABLE alerts ADD COLUMN revision INTEGER NOT NULL DEFAULT 0"))
            if "seq" not in columns:
                conn.execute(text("ALTER TABLE alerts ADD COLUMN seq BIGINT NOT NULL DEFAULT 0"))
                conn.execute(text("CREATE INDEX IF NOT EXISTS ix_alerts_seq ON alerts (seq)"))
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        with self.engine.begin() as conn:
            conn.execute(insert(alert_sequence).values(name="alerts", value=0).on_conflict_do_nothing())

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def save_alerts(self, records: Iterable[dict[str, Any]]) -> int:
        """Store alerts idempotently: a new alert_id is inserted, a known one is replaced only by
        a higher revision. Returns how many rows were written."""
        newest = newest_by(records, "alert_id", "revision")
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
                "revision": int(r.get("revision", 0)),
            }
            for r in newest.values()
        ]
        if not rows:
            return 0
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        base = insert(alerts)
        statement = base.on_conflict_do_update(
            index_elements=["alert_id"],
            set_={name: base.excluded[name] for name in ("severity", "fatal", "agent_id", "payload", "revision",
                                                          "seq")},
            where=alerts.c.revision < base.excluded.revision,
        ).returning(alerts.c.alert_id)
        take = alert_sequence.update().where(alert_sequence.c.name == "alerts").values(
            value=alert_sequence.c.value + len(rows)).returning(alert_sequence.c.value)
        with self.engine.begin() as conn:
            last = conn.execute(take).scalar()  # first: the lock orders writers by commit
            if last is None:  # a database whose schema predates the sequence
                conn.execute(insert(alert_sequence).values(name="alerts", value=0).on_conflict_do_nothing())
                last = conn.execute(take).scalar_one()
            first = int(last) - len(rows) + 1
            for offset, row in enumerate(sorted(rows, key=lambda r: (r["ts_ms"], r["alert_id"]))):
                row["seq"] = first + offset  # rows not written leave a gap, which is harmless
            written = conn.execute(statement, rows).all()
        return len(written)

    def alert_changes(self, *, after: int, limit: int = 500, team_id: str | None = None,
                      agent_id: str | None = None) -> list[tuple[int, dict[str, Any]]]:
        """Alert changes with a sequence number above ``after``, oldest first, as (seq, alert)."""
        query = select(alerts.c.seq, alerts.c.payload).where(alerts.c.seq > after).order_by(alerts.c.seq)
        if team_id is not None:
            query = query.where(alerts.c.team_id == team_id)
        if agent_id is not None:
            query = query.where(alerts.c.agent_id == agent_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.limit(limit)).all()
        return [(int(seq), json.loads(payload)) for seq, payload in rows]

    def alert_change_heads(self, *, after: int, limit: int = 500, team_id: str | None = None,
                           agent_id: str | None = None) -> list[tuple[int, str, int]]:
        """Like ``alert_changes`` but only (seq, alert_id, revision): cheap enough for every heartbeat."""
        query = select(alerts.c.seq, alerts.c.alert_id, alerts.c.revision).where(alerts.c.seq > after)
        if team_id is not None:
            query = query.where(alerts.c.team_id == team_id)
        if agent_id is not None:
            query = query.where(alerts.c.agent_id == agent_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(alerts.c.seq).limit(limit)).all()
        return [(int(seq), str(alert_id), int(revision)) for seq, alert_id, revision in rows]

    def last_alert_change(self) -> int:
        """The highest alert change sequence number stored (0 for none)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(alerts.c.seq))).scalar() or 0)

    def save_conversations(self, snapshots: Iterable[dict[str, Any]]) -> int:
        """Upsert conversation snapshots; a stored row is replaced only by a higher version."""
        newest = newest_by(snapshots, "conversation_id", "version")
        rows = [
            {
                "conversation_id": c["conversation_id"], "shop_id": c["shop_id"], "team_id": c.get("team_id"),
                "agent_id": c.get("agent_id"), "status": c["status"], "opened_ms": c.get("opened_ms"),
                "closed_ms": c.get("closed_ms"), "waiting_since_ms": c.get("waiting_since_ms"),
                "version": int(c["version"]), "final": bool(c.get("final")),
                "payload": json.dumps(c, ensure_ascii=False, separators=(",", ":")),
            }
            for c in newest.values()
        ]
        if not rows:
            return 0
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        base = insert(conversations)
        changing = ("team_id", "agent_id", "status", "closed_ms", "waiting_since_ms", "version", "final", "payload")
        statement = base.on_conflict_do_update(
            index_elements=["conversation_id"],
            set_={name: base.excluded[name] for name in changing},
            where=conversations.c.version < base.excluded.version,
        ).returning(conversations.c.conversation_id)
        with self.engine.begin() as conn:
            return len(conn.execute(statement, rows).all())

    def reconcile_open(self, owned: Callable[[str], bool], held: Callable[[str], bool], *, reason: str,
                       at_iso: str) -> int:
        """Conversations SQL still shows as open or waiting that the worker owning them no longer holds (lost with
        a broker that kept nothing, or closed while a snapshot was lost): marked closed with ``reason``, so the
        waiting board shows no ghosts. ``owned``: the conversation's partition is active on the calling worker;
        ``held``: that worker has its state. Returns how many rows were closed."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(conversations.c.conversation_id, conversations.c.payload).where(
                conversations.c.status.in_(("open", "waiting")))).all()
        stale = [(cid, payload) for cid, payload in rows if owned(cid) and not held(cid)]
        closed = 0
        with self.engine.begin() as conn:
            for cid, payload in stale:
                body = json.loads(payload)
                body.update(status="closed", close_reason=reason, waiting_since_ms=None, waiting_since=None,
                            reconciled_at=at_iso)
                closed += conn.execute(conversations.update().where(
                    conversations.c.conversation_id == cid, conversations.c.status.in_(("open", "waiting"))).values(
                    status="closed", waiting_since_ms=None, version=conversations.c.version + 1,
                    payload=json.dumps(body, ensure_ascii=False, separators=(",", ":")))).rowcount
        return closed

    def list_conversations(self, *, agent_id: str | None = None, team_id: str | None = None,
                           status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Waiting ones longest-waiting first, others newest first; without transcripts."""
        query = select(conversations.c.payload)
        if agent_id is not None:
            query = query.where(conversations.c.agent_id == agent_id)
        if team_id is not None:
            query = query.where(conversations.c.team_id == team_id)
        if status is not None:
            query = query.where(conversations.c.status == status)
        if status == "waiting":
            query = query.order_by(conversations.c.waiting_since_ms.asc(), conversations.c.conversation_id)
        else:
            query = query.order_by(conversations.c.opened_ms.desc(), conversations.c.conversation_id)
        with self.engine.connect() as conn:
            payloads = conn.execute(query.limit(limit)).scalars().all()
        out = []
        for payload in payloads:
            body = json.loads(payload)
            body.pop("transcript", None)
            out.append(body)
        return out

    def get_conversation(self, conversation_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            payload = conn.execute(select(conversations.c.payload).where(
                conversations.c.conversation_id == conversation_id)).scalar()
        return json.loads(payload) if payload else None

    def recent_alerts(
        self, *, limit: int = 100, before_ms: int | None = None, since_ms: int | None = None,
        team_id: str | None = None, agent_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first; ``team_id``/``agent_id`` narrow to one team's or one agent's alerts."""
        query = select(alerts.c.payload).order_by(alerts.c.ts_ms.desc(), alerts.c.alert_id)
        if team_id is not None:
            query = query.where(alerts.c.team_id == team_id)
        if agent_id is not None:
            query = query.where(alerts.c.agent_id == agent_id)
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
