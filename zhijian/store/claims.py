"""Claim → resolve: what floor leads do about an alert, kept per alert with every step audited.

States: ``open`` (nobody yet) → ``claimed`` (someone is on it) → ``resolved`` or
``false_positive``. Notes can be added at any step. A claim held by someone else cannot be
taken over except by a supervisor or admin.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Column, String, Table, Text, select

from zhijian.store.base import alerts, metadata
from zhijian.store.quality import QualityStore, now_iso
from zhijian.store.users import Principal

OUTCOMES = ("resolved", "false_positive")

actions = Table(
    "alert_actions", metadata,
    Column("alert_id", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("claimed_by", String(64)),
    Column("claimed_at", String(40)),
    Column("resolved_by", String(64)),
    Column("resolved_at", String(40)),
    Column("notes", Text, nullable=False),  # JSON list of {by, at, text}
)


class ClaimError(ValueError):
    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


class ClaimStore(QualityStore):
    def alert_record(self, alert_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            payload = conn.execute(select(alerts.c.payload).where(alerts.c.alert_id == alert_id)).scalar()
        return json.loads(payload) if payload else None

    def action_of(self, alert_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(actions).where(actions.c.alert_id == alert_id)).mappings().first()
        return _public(dict(row)) if row else {"alert_id": alert_id, "state": "open", "claimed_by": None,
                                               "claimed_at": None, "resolved_by": None, "resolved_at": None,
                                               "notes": []}

    def actions_for(self, alert_ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(alert_ids), 500):
                chunk = alert_ids[start:start + 500]
                for row in conn.execute(select(actions).where(actions.c.alert_id.in_(chunk))).mappings():
                    found[row["alert_id"]] = _public(dict(row))
        return found

    def act(self, alert_id: str, who: Principal, verb: str, note: str = "", *, known: bool = False) -> dict[str, Any]:
        """Apply ``verb`` (claim | note | resolved | false_positive) and return the new action record.

        ``known``: the caller has seen the alert (on the live feed) even if it is not stored yet."""
        now = now_iso()
        with self.engine.begin() as conn:
            if not known and conn.execute(select(alerts.c.alert_id).where(alerts.c.alert_id == alert_id)).first() \
                    is None:
                raise ClaimError(f"no alert {alert_id!r}", 404)
            row = conn.execute(select(actions).where(actions.c.alert_id == alert_id)).mappings().first()
            current = dict(row) if row else {"alert_id": alert_id, "state": "open", "claimed_by": None,
                                             "claimed_at": None, "resolved_by": None, "resolved_at": None,
                                             "notes": "[]"}
            overrule = who.role in ("supervisor", "admin")
            held_by_other = current["claimed_by"] not in (None, who.username)
            if verb == "claim":
                if current["state"] in OUTCOMES:
                    raise ClaimError(f"alert already {current['state']}")
                if held_by_other and not overrule:
                    raise ClaimError(f"claimed by {current['claimed_by']}")
                current.update(state="claimed", claimed_by=who.username, claimed_at=now)
            elif verb in OUTCOMES:
                if current["state"] in OUTCOMES:
                    raise ClaimError(f"alert already {current['state']}")
                if held_by_other and not overrule:
                    raise ClaimError(f"claimed by {current['claimed_by']}")
                if current["claimed_by"] is None:
                    current.update(claimed_by=who.username, claimed_at=now)
                current.update(state=verb, resolved_by=who.username, resolved_at=now)
            elif verb != "note":
                raise ClaimError(f"unknown action {verb!r}", 400)
            notes = json.loads(str(current["notes"] or "[]"))
            if note:
                notes.append({"by": who.username, "at": now, "text": note})
            current["notes"] = json.dumps(notes, ensure_ascii=False)
            if row is None:
                conn.execute(actions.insert().values(current))
            else:
                conn.execute(actions.update().where(actions.c.alert_id == alert_id).values(current))
            self._audit(conn, who.username, f"alert.{verb}", alert_id, {"note": note, "state": current["state"]})
        return _public(current)

    def action_counts(self, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """(team, agent, state) of every acted-on alert raised in [start_ms, end_ms), for the rollup."""
        query = select(alerts.c.team_id, alerts.c.agent_id, actions.c.state).join(
            actions, actions.c.alert_id == alerts.c.alert_id).where(alerts.c.ts_ms >= start_ms,
                                                                    alerts.c.ts_ms < end_ms)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]


def _public(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["notes"] = json.loads(row["notes"]) if isinstance(row["notes"], str) else row["notes"]
    return row
