"""The notifier's durable memory: a cursor per destination and a claim per push.

Two tables, both owned by ``zhijian notify`` and nothing else:

``notify_cursors``  (destination PK, seq, updated_at)
    The highest alert change sequence number (``alerts.seq``, handed out in commit order, see
    ``Alerts.save``) up to which the destination has been served. After a restart the notifier
    reads every alert change above its cursor from SQL, so alerts raised while it was down are pushed.
    A destination seen for the first time starts at the newest change (no history is pushed to a new
    channel).

``notify_deliveries``  (alert_id, what, destination PK; seq, status, owner, at)
    One row per push: ``what`` is the alert's severity (a rise in severity is a new push) or
    ``escalation:<step>`` for a step of the escalation ladder; ``status`` is ``pushed`` (handed to the
    channel's sender) or ``skipped_stale`` (older than the catch-up window: recorded, not pushed).
    Inserting the row *is* the claim: the primary key lets exactly one notifier process win it, so two
    notifiers (or one restarted mid-stream) never push the same alert twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, func, select

from zhijian.store.alerts import Alerts
from zhijian.store.audit import now_iso
from zhijian.store.engine import upsert
from zhijian.store.schema import notify_cursors, notify_deliveries

Claim = tuple[str, str, str]  # (alert_id, what, destination)


class NotifyLedger:
    """Cursors and claims (a repository of ``Database``: ``db.notify``)."""

    def __init__(self, engine: Engine, alerts: Alerts) -> None:
        self.engine, self.alerts = engine, alerts
        self.dialect = engine.dialect.name

    def cursors(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {str(d): int(s) for d, s in conn.execute(select(notify_cursors.c.destination,
                                                                   notify_cursors.c.seq))}

    def start_cursors(self, destinations: Iterable[str]) -> dict[str, int]:
        """The cursor of each destination, creating missing ones at the newest alert change."""
        wanted = set(destinations)
        known = self.cursors()
        missing = wanted - set(known)
        if missing:
            newest = self.alerts.last_change()
            statement = upsert(self.dialect, notify_cursors, keys=["destination"])
            with self.engine.begin() as conn:
                for destination in sorted(missing):
                    conn.execute(statement, {"destination": destination, "seq": newest, "updated_at": now_iso()})
            known = self.cursors()
        return {d: known[d] for d in wanted}

    def advance(self, destinations: Iterable[str], seq: int) -> None:
        """Move each destination's cursor up to ``seq`` (never down)."""
        with self.engine.begin() as conn:
            for destination in destinations:
                conn.execute(notify_cursors.update().where(notify_cursors.c.destination == destination,
                                                           notify_cursors.c.seq < seq)
                             .values(seq=seq, updated_at=now_iso()))

    def claim(self, rows: Iterable[tuple[Claim, int | None, str]], owner: str) -> set[Claim]:
        """Insert each (claim, seq, status) unless some process already holds it; returns the ones won."""
        values = [{"alert_id": a, "what": w, "destination": d, "seq": seq, "status": status, "owner": owner,
                   "at": now_iso()} for (a, w, d), seq, status in rows]
        if not values:
            return set()
        won: set[Claim] = set()
        statement = upsert(self.dialect, notify_deliveries, keys=["alert_id", "what", "destination"]).returning(
            notify_deliveries.c.alert_id)
        with self.engine.begin() as conn:
            for value in values:  # one statement each: RETURNING with ON CONFLICT is per row on every dialect
                row = conn.execute(statement, value).first()
                if row is not None:
                    won.add((str(value["alert_id"]), str(value["what"]), str(value["destination"])))
        return won

    def deliveries(self, alert_id: str | None = None) -> list[dict[str, Any]]:
        query = select(notify_deliveries).order_by(notify_deliveries.c.at)
        if alert_id is not None:
            query = query.where(notify_deliveries.c.alert_id == alert_id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def status_counts(self) -> dict[str, int]:
        query = select(notify_deliveries.c.status, func.count()).group_by(notify_deliveries.c.status)
        with self.engine.connect() as conn:
            return {str(s): int(n) for s, n in conn.execute(query)}
