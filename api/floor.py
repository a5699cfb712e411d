"""Read endpoints the floor's dashboard needs beside the alert and score routes: one alert's
claim/note/resolve trail, and the alerts (with their handling and notes) of one conversation.
Every record is scope-checked like the other alert routes: outside the user's scope it is
"not found" (an alert), or simply not listed (a conversation's alerts)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy import select

from api.auth import Auth, in_scope
from api.deps import id_path
from api.schemas import ActionTrailOut, ConversationAlertsOut, errors
from zhijian.store.app import AppStore
from zhijian.store.base import alerts
from zhijian.store.users import Principal


def router(store: AppStore, auth: Auth) -> APIRouter:
    api = APIRouter()
    viewer = Depends(auth.allowed("view"))

    @api.get("/api/alerts/{alert_id}/actions", response_model=ActionTrailOut, responses=errors(401, 403, 404))
    async def alert_actions(alert_id: Annotated[str, id_path("alert id")], who: Principal = viewer) -> dict[str, Any]:
        def build() -> dict[str, Any]:
            alert = store.alert_record(alert_id)
            if alert is None:
                raise HTTPException(status_code=404, detail="not found")
            in_scope(who, alert)
            trail = [{"at": e["at"], "by": e["actor"], "action": str(e["action"]).removeprefix("alert."),
                      "note": (e["detail"] or {}).get("note", ""), "state": (e["detail"] or {}).get("state")}
                     for e in store.audit_trail(alert_id) if str(e["action"]).startswith("alert.")]
            return {"alert_id": alert_id, "action": store.action_of(alert_id), "trail": trail}
        return await asyncio.to_thread(build)

    @api.get("/api/conversations/{conversation_id}/alerts", response_model=ConversationAlertsOut,
             responses=errors(401, 403))
    async def conversation_alerts(conversation_id: Annotated[str, id_path("conversation id")], who: Principal = viewer,
                                  limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict[str, Any]:
        def build() -> list[dict[str, Any]]:
            query = select(alerts.c.payload).where(alerts.c.conversation_id == conversation_id).order_by(
                alerts.c.ts_ms, alerts.c.alert_id).limit(limit)
            with store.engine.connect() as conn:
                rows = [json.loads(p) for p in conn.execute(query).scalars()]
            rows = [r for r in rows if who.sees(r)]
            states = store.actions_for([r["alert_id"] for r in rows])
            for row in rows:
                if row["alert_id"] in states:
                    row["action"] = states[row["alert_id"]]
            return rows
        return {"conversation_id": conversation_id, "alerts": await asyncio.to_thread(build)}

    return api
