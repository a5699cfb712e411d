"""The alert wall's endpoints: recent alerts (scoped, with their claim state), the change feed
by cursor, the live WebSocket with gap-free replay (scoped per pushed message), and
claim → note → resolve / false positive.

Cursors are the alerts table's change sequence (``Alerts.save``): a reader that sees
change N sees every change below N. A socket's cursor only moves past changes it has sent."""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, WebSocket
from pydantic import BaseModel, Field

from api.auth import POLICY_VIOLATION, Auth, in_scope, not_found
from api.deps import Claimer, EpochMs, Viewer, id_path
from api.feed import Hub
from api.publisher import Publisher
from api.schemas import ActionOut, AlertsOut, errors
from api.sockets import heartbeat_frame, serve, websocket_user
from zhijian.store.database import Database
from zhijian.store.users import Principal

PAGE = 500
CURSOR_PATTERN = r"^\d{1,18}$"
AlertId = Annotated[str, id_path("alert id", 64)]
Cursor = Annotated[str | None, Query(pattern=CURSOR_PATTERN, description="a cursor from an earlier answer")]


class RecentAlerts:
    """The last alerts seen on the live feed, newest revision each: a floor lead may claim an
    alert the moment it appears, and a socket's replay adds those SQL may not have yet."""

    def __init__(self, size: int = 5000, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.clock = clock
        self._alerts: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()

    def remember(self, payload: str) -> str:
        try:
            alert = json.loads(payload)
        except ValueError:
            return payload
        if isinstance(alert, dict) and isinstance(alert.get("alert_id"), str) and "kind" not in alert:
            kept = self._alerts.get(alert["alert_id"])
            if kept is None or _revision(alert) >= _revision(kept[1]):
                self._alerts[alert["alert_id"]] = (self.clock(), alert)
                self._alerts.move_to_end(alert["alert_id"])
            while len(self._alerts) > self.size:
                self._alerts.popitem(last=False)
        return payload

    def get(self, alert_id: str) -> dict[str, Any] | None:
        found = self._alerts.get(alert_id)
        return found[1] if found else None

    def seen_within(self, seconds: float) -> list[dict[str, Any]]:
        """Alerts seen in the last ``seconds``, oldest first."""
        since = self.clock() - seconds
        return [alert for seen, alert in self._alerts.values() if seen >= since]


def _revision(alert: dict[str, Any]) -> int:
    try:
        return int(alert.get("revision") or 0)
    except (TypeError, ValueError):
        return 0


class Delivery:
    """What one socket has been sent, and the cursor it may be given: the highest change
    sequence below which every change in its scope has been sent."""

    def __init__(self, store: Database, who: Principal, cursor: int = 0, capacity: int = 50_000) -> None:
        self.store = store
        self.who = who
        self.cursor = cursor
        self.capacity = capacity
        self._sent: OrderedDict[str, int] = OrderedDict()

    def sent(self, alert: dict[str, Any]) -> None:
        alert_id = alert.get("alert_id")
        if not isinstance(alert_id, str) or "kind" in alert:
            return
        revision = max(_revision(alert), self._sent.get(alert_id, -1))
        self._sent[alert_id] = revision
        self._sent.move_to_end(alert_id)
        while len(self._sent) > self.capacity:
            self._sent.popitem(last=False)

    def admit(self, payload: str) -> bool:
        """Whether a live payload goes to this socket: in its scope and not sent already (the
        replay and the live queue overlap by design, and the topic is at-least-once), recording it."""
        try:
            alert = json.loads(payload)
        except ValueError:
            return False
        if not isinstance(alert, dict) or not self.who.sees(alert):
            return False
        if "kind" not in alert and self.has(alert):
            return False
        self.sent(alert)
        return True

    def has(self, alert: dict[str, Any]) -> bool:
        return self._sent.get(str(alert.get("alert_id")), -1) >= _revision(alert)

    def advance(self) -> int:
        """Move the cursor over the stored changes this socket has been sent (a query)."""
        while True:
            heads = self.store.alerts.change_heads(after=self.cursor, limit=PAGE, **self.who.scope)
            for seq, alert_id, revision in heads:
                if self._sent.get(alert_id, -1) < revision:
                    return self.cursor
                self.cursor = seq
            if len(heads) < PAGE:
                return self.cursor


class ActionIn(BaseModel):
    note: str = Field(default="", max_length=2000)


class NoteIn(BaseModel):
    note: str = Field(min_length=1, max_length=2000, pattern=r"\S")


def router(store: Database, auth: Auth, hub: Hub, actions: Publisher, recent: RecentAlerts,
           feed_ok: Callable[[], bool], recent_window_s: float = 120.0) -> APIRouter:
    api = APIRouter()

    @api.get("/api/alerts", response_model=AlertsOut, responses=errors(401, 403))
    async def recent_alerts(
        who: Viewer,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before_ms: EpochMs = None,
        since_ms: EpochMs = None,
        after: Cursor = None,
    ) -> dict[str, Any]:
        """Newest first; or, with ``after``, the changes after that cursor, oldest first, with the
        cursor to ask for the next page."""
        def load() -> dict[str, Any]:
            if after is not None:
                changes = store.alerts.changes(after=int(after), limit=limit, **who.scope)
                rows = [alert for _, alert in changes]
                cursor = changes[-1][0] if changes else int(after)
            else:
                cursor = store.alerts.last_change()  # read first: every change up to it is in or below the list
                rows = store.alerts.recent(limit=limit, before_ms=before_ms, since_ms=since_ms, **who.scope)
            states = store.claims.for_alerts([r["alert_id"] for r in rows])
            for row in rows:
                if row["alert_id"] in states:
                    row["action"] = states[row["alert_id"]]
            return {"alerts": rows, "cursor": str(cursor)}
        return await asyncio.to_thread(load)

    async def act(alert_id: str, who: Principal, verb: str, note: str) -> dict[str, Any]:
        alert = recent.get(alert_id) or await asyncio.to_thread(store.alerts.get, alert_id)
        if alert is None:
            raise not_found()
        in_scope(who, alert)
        action = await asyncio.to_thread(lambda: store.claims.act(alert_id, who, verb, note, known=True))
        event = {"kind": "action", **action, "team_id": alert.get("team_id"), "agent_id": alert.get("agent_id"),
                 "conversation_id": alert.get("conversation_id"), "rule": alert.get("rule")}
        await actions.publish(alert_id, event)  # every dashboard, whichever API process serves it
        return action

    acted = errors(401, 403, 404, 409)

    @api.post("/api/alerts/{alert_id}/claim", response_model=ActionOut, responses=acted)
    async def claim(alert_id: AlertId, who: Claimer, body: ActionIn | None = None) -> dict[str, Any]:
        return await act(alert_id, who, "claim", body.note if body else "")

    @api.post("/api/alerts/{alert_id}/note", response_model=ActionOut, responses=acted)
    async def note(alert_id: AlertId, body: NoteIn, who: Claimer) -> dict[str, Any]:
        return await act(alert_id, who, "note", body.note)

    @api.post("/api/alerts/{alert_id}/resolve", response_model=ActionOut, responses=acted)
    async def resolve(alert_id: AlertId, who: Claimer,
                      outcome: Literal["resolved", "false_positive"] = "resolved",
                      body: ActionIn | None = None) -> dict[str, Any]:
        return await act(alert_id, who, outcome, body.note if body else "")

    @api.websocket("/ws/alerts")
    async def alerts_socket(websocket: WebSocket) -> None:
        """(a) with ``after``: every change after it (SQL, paged) and the recent alerts of the feed;
        (b) ``{"kind": "ready", "cursor": …}``; (c) live alerts and actions; heartbeats every 5 s."""
        raw_after = websocket.query_params.get("after")
        who = await websocket_user(websocket, auth)
        if who is None:
            return
        if raw_after is not None and not (raw_after.isdigit() and len(raw_after) <= 18):
            await websocket.accept()
            await websocket.close(code=POLICY_VIOLATION, reason="bad cursor")
            return
        delivery = Delivery(store, who)

        async def replay() -> AsyncIterator[str]:
            if raw_after is None:
                delivery.cursor = await asyncio.to_thread(store.alerts.last_change)
            else:
                delivery.cursor = int(raw_after)
                while True:
                    page = await asyncio.to_thread(
                        lambda: store.alerts.changes(after=delivery.cursor, limit=PAGE, **who.scope))
                    for seq, alert in page:
                        delivery.sent(alert)
                        delivery.cursor = seq
                        yield json.dumps(alert, ensure_ascii=False)
                    if len(page) < PAGE:
                        break
                    # progress: were the socket dropped mid-replay, the client resumes from here
                    yield json.dumps(heartbeat_frame(feed_ok(), cursor=str(delivery.cursor)))
                for alert in recent.seen_within(recent_window_s):  # on the feed, maybe not in SQL yet
                    if who.sees(alert) and not delivery.has(alert):
                        delivery.sent(alert)
                        yield json.dumps(alert, ensure_ascii=False)
            yield json.dumps({"kind": "ready", "cursor": str(delivery.cursor)})

        async def heartbeat() -> dict[str, Any]:
            cursor = await asyncio.to_thread(delivery.advance)
            return heartbeat_frame(feed_ok(), cursor=str(cursor))

        await serve(websocket, hub, websocket.app.state.connections, who, heartbeat=heartbeat, initial=replay(),
                    visible=delivery.admit)

    return api


def visible_to(who: Principal) -> Any:
    """A filter for pushed payloads: everything for all-team roles, else parse and check the scope."""
    if not who.scope:
        return None

    def visible(payload: str) -> bool:
        try:
            return who.sees(json.loads(payload))
        except ValueError:
            return False
    return visible
