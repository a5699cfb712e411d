"""Read endpoints the floor's dashboard needs beside the alert and score routes: one alert's
claim/note/resolve trail, and the alerts (with their handling and notes) of one conversation.
Every record is scope-checked like the other alert routes: outside the user's scope it is
"not found" (an alert), or simply not listed (a conversation's alerts)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from api.auth import Auth, in_scope
from api.deps import id_path
from api.schemas import ActionTrailOut, ConversationAlertsOut, errors
from zhijian.store.database import Database
from zhijian.store.users import Principal


def router(store: Database, auth: Auth) -> APIRouter:
    api = APIRouter()
    viewer = Depends(auth.allowed("view"))

    @api.get("/api/alerts/{alert_id}/actions", response_model=ActionTrailOut, responses=errors(401, 403, 404))
    async def alert_actions(alert_id: Annotated[str, id_path("alert id")], who: Principal = viewer) -> dict[str, Any]:
        def build() -> dict[str, Any]:
            alert = store.alerts.get(alert_id)
            if alert is None:
                raise HTTPException(status_code=404, detail="not found")
            in_scope(who, alert)
            trail = [{"at": e["at"], "by": e["actor"], "action": str(e["action"]).removeprefix("alert."),
                      "note": (e["detail"] or {}).get("note", ""), "state": (e["detail"] or {}).get("state")}
                     for e in store.audit.trail(alert_id) if str(e["action"]).startswith("alert.")]
            return {"alert_id": alert_id, "action": store.claims.of(alert_id), "trail": trail}
        return await asyncio.to_thread(build)

    @api.get("/api/conversations/{conversation_id}/alerts", response_model=ConversationAlertsOut,
             responses=errors(401, 403))
    async def conversation_alerts(conversation_id: Annotated[str, id_path("conversation id")], who: Principal = viewer,
                                  limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict[str, Any]:
        def build() -> list[dict[str, Any]]:
            rows = [r for r in store.alerts.of_conversation(conversation_id, limit=limit) if who.sees(r)]
            states = store.claims.for_alerts([r["alert_id"] for r in rows])
            for row in rows:
                if row["alert_id"] in states:
                    row["action"] = states[row["alert_id"]]
            return rows
        return {"conversation_id": conversation_id, "alerts": await asyncio.to_thread(build)}

    return api
