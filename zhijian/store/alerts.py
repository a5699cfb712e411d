"""Alerts: stored idempotently by ``alert_id`` (a higher revision replaces), read by change sequence or time."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Engine, func, select

from zhijian.store.engine import newest_by, upsert
from zhijian.store.schema import alert_sequence, alerts


class Alerts:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(self, records: Iterable[dict[str, Any]]) -> int:
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
        statement = upsert(self.engine.dialect.name, alerts, keys=["alert_id"],
                           update=("severity", "fatal", "agent_id", "payload", "revision", "seq"),
                           where=lambda new: alerts.c.revision < new.revision).returning(alerts.c.alert_id)
        take = alert_sequence.update().where(alert_sequence.c.name == "alerts").values(
            value=alert_sequence.c.value + len(rows)).returning(alert_sequence.c.value)
        with self.engine.begin() as conn:
            last = conn.execute(take).scalar_one()  # first: the lock orders writers by commit
            first = int(last) - len(rows) + 1
            for offset, row in enumerate(sorted(rows, key=lambda r: (r["ts_ms"], r["alert_id"]))):
                row["seq"] = first + offset  # rows not written leave a gap, which is harmless
            written = conn.execute(statement, rows).all()
        return len(written)

    def changes(self, *, after: int, limit: int = 500, team_id: str | None = None,
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

    def change_heads(self, *, after: int, limit: int = 500, team_id: str | None = None,
                     agent_id: str | None = None) -> list[tuple[int, str, int]]:
        """Like ``changes`` but only (seq, alert_id, revision): cheap enough for every heartbeat."""
        query = select(alerts.c.seq, alerts.c.alert_id, alerts.c.revision).where(alerts.c.seq > after)
        if team_id is not None:
            query = query.where(alerts.c.team_id == team_id)
        if agent_id is not None:
            query = query.where(alerts.c.agent_id == agent_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(alerts.c.seq).limit(limit)).all()
        return [(int(seq), str(alert_id), int(revision)) for seq, alert_id, revision in rows]

    def last_change(self) -> int:
        """The highest alert change sequence number stored (0 for none)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(alerts.c.seq))).scalar() or 0)

    def recent(
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

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(alerts)).scalar_one())

    def get(self, alert_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            payload = conn.execute(select(alerts.c.payload).where(alerts.c.alert_id == alert_id)).scalar()
        return json.loads(payload) if payload else None

    def of_conversation(self, conversation_id: str, *, limit: int = 200) -> list[dict[str, Any]]:
        """A conversation's alerts in event-time order."""
        query = select(alerts.c.payload).where(alerts.c.conversation_id == conversation_id).order_by(
            alerts.c.ts_ms, alerts.c.alert_id).limit(limit)
        with self.engine.connect() as conn:
            return [json.loads(p) for p in conn.execute(query).scalars()]

    def times(self, start_ms: int, end_ms: int) -> list[tuple[str, int]]:
        """(rule, ts_ms) of every alert in [start_ms, end_ms)."""
        with self.engine.connect() as conn:
            return [(r, int(t)) for r, t in conn.execute(select(alerts.c.rule, alerts.c.ts_ms).where(
                alerts.c.ts_ms >= start_ms, alerts.c.ts_ms < end_ms))]

    def waiting_counts(self, conversation_ids: Sequence[str]) -> dict[str, int]:
        """How many customer_waiting alerts each conversation raised."""
        counts: dict[str, int] = {}
        with self.engine.connect() as conn:
            for chunk in range(0, len(conversation_ids), 500):
                ids = list(conversation_ids[chunk:chunk + 500])
                for (conv,) in conn.execute(select(alerts.c.conversation_id).where(
                        alerts.c.rule == "customer_waiting", alerts.c.conversation_id.in_(ids))):
                    counts[conv] = counts.get(conv, 0) + 1
        return counts
