"""Claim → resolve: what floor leads do about an alert, kept per alert with every step audited.

The steps are ``zhijian.store.states.claim_transition`` (open → claimed → resolved | false_positive; notes at
any step; a claim held by someone else is taken over only by a supervisor or admin).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from sqlalchemy import Engine, select

from zhijian.store import states
from zhijian.store.audit import Audit, now_iso
from zhijian.store.errors import ClaimError
from zhijian.store.schema import actions, alerts
from zhijian.store.users import Principal

OUTCOMES = states.CLAIM_OUTCOMES
_NONE = {"state": "open", "claimed_by": None, "claimed_at": None, "resolved_by": None, "resolved_at": None}


class Claims:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def of(self, alert_id: str) -> dict[str, Any]:
        """The action record of an alert (``open`` with no notes when nobody acted yet)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(actions).where(actions.c.alert_id == alert_id)).mappings().first()
        return _public(dict(row)) if row else {"alert_id": alert_id, **_NONE, "notes": []}

    def for_alerts(self, alert_ids: list[str]) -> dict[str, dict[str, Any]]:
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
                raise ClaimError(f"no alert {alert_id!r}", "not_found")
            row = conn.execute(select(actions).where(actions.c.alert_id == alert_id)).mappings().first()
            current = dict(row) if row else {"alert_id": alert_id, **_NONE, "notes": "[]"}
            claim = states.claim_transition(
                states.Claim(str(current["state"]), current["claimed_by"], current["claimed_at"],
                             current["resolved_by"], current["resolved_at"]), verb, actor=who.username,
                overrule=who.role in ("supervisor", "admin"), now=now)
            current.update(asdict(claim))
            notes = json.loads(str(current["notes"] or "[]"))
            if note:
                notes.append({"by": who.username, "at": now, "text": note})
            current["notes"] = json.dumps(notes, ensure_ascii=False)
            if row is None:
                conn.execute(actions.insert().values(current))
            else:
                conn.execute(actions.update().where(actions.c.alert_id == alert_id).values(current))
            Audit.record(conn, who.username, f"alert.{verb}", alert_id, {"note": note, "state": current["state"]})
        return _public(current)

    def counts(self, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
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
