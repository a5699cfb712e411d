"""The alert wall's endpoints: recent alerts (scoped, with their claim state), the live
WebSocket (scoped per pushed message), and claim → note → resolve / false positive."""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, WebSocket
from pydantic import BaseModel, Field

from api.auth import Auth, in_scope, not_found
from api.feed import Hub
from api.publisher import Publisher
from api.sockets import serve, websocket_user
from zhijian.appstore import AppStore
from zhijian.claims import ClaimError
from zhijian.users import Principal


class RecentAlerts:
    """The last alerts seen on the live feed: a floor lead may claim an alert the moment it
    appears, before the worker's persist agent has stored it."""

    def __init__(self, size: int = 5000) -> None:
        self.size = size
        self._alerts: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def remember(self, payload: str) -> str:
        try:
            alert = json.loads(payload)
        except ValueError:
            return payload
        if isinstance(alert, dict) and "alert_id" in alert and alert.get("kind") != "action":
            self._alerts[alert["alert_id"]] = alert
            self._alerts.move_to_end(alert["alert_id"])
            while len(self._alerts) > self.size:
                self._alerts.popitem(last=False)
        return payload

    def get(self, alert_id: str) -> dict[str, Any] | None:
        return self._alerts.get(alert_id)


class ActionIn(BaseModel):
    note: str = Field(default="", max_length=2000)


def router(store: AppStore, auth: Auth, hub: Hub, actions: Publisher, recent: RecentAlerts) -> APIRouter:
    api = APIRouter()
    viewer = Depends(auth.allowed("view"))
    claimer = Depends(auth.allowed("claim"))

    @api.get("/api/alerts")
    async def recent_alerts(
        who: Principal = viewer,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before_ms: int | None = None,
        since_ms: int | None = None,
    ) -> dict[str, Any]:
        def load() -> list[dict[str, Any]]:
            rows = store.recent_alerts(limit=limit, before_ms=before_ms, since_ms=since_ms, **who.scope)
            states = store.actions_for([r["alert_id"] for r in rows])
            for row in rows:
                if row["alert_id"] in states:
                    row["action"] = states[row["alert_id"]]
            return rows
        return {"alerts": await asyncio.to_thread(load)}

    async def act(alert_id: str, who: Principal, verb: str, note: str) -> dict[str, Any]:
        alert = recent.get(alert_id) or await asyncio.to_thread(store.alert_record, alert_id)
        if alert is None:
            raise not_found()
        in_scope(who, alert)
        try:
            action = await asyncio.to_thread(lambda: store.act(alert_id, who, verb, note, known=True))
        except ClaimError as exc:
            raise HTTPException(status_code=exc.status, detail=str(exc)) from None
        event = {"kind": "action", **action, "team_id": alert.get("team_id"), "agent_id": alert.get("agent_id"),
                 "conversation_id": alert.get("conversation_id"), "rule": alert.get("rule")}
        await actions.publish(alert_id, event)  # every dashboard, whichever API process serves it
        return action

    @api.post("/api/alerts/{alert_id}/claim")
    async def claim(alert_id: str, who: Principal = claimer, body: ActionIn | None = None) -> dict[str, Any]:
        return await act(alert_id, who, "claim", body.note if body else "")

    @api.post("/api/alerts/{alert_id}/note")
    async def note(alert_id: str, body: ActionIn, who: Principal = claimer) -> dict[str, Any]:
        if not body.note.strip():
            raise HTTPException(status_code=422, detail="a note needs text")
        return await act(alert_id, who, "note", body.note)

    @api.post("/api/alerts/{alert_id}/resolve")
    async def resolve(alert_id: str, who: Principal = claimer,
                      outcome: Literal["resolved", "false_positive"] = "resolved",
                      body: ActionIn | None = None) -> dict[str, Any]:
        return await act(alert_id, who, outcome, body.note if body else "")

    @api.websocket("/ws/alerts")
    async def alerts_socket(websocket: WebSocket) -> None:
        who = await websocket_user(websocket, auth)
        if who is None:
            return
        state = websocket.app.state
        await serve(websocket, hub, state.connections, who, heartbeat=state.alert_heartbeat, visible=visible_to(who))

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
