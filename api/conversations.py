"""Conversation endpoints: the list (from SQL), one conversation (live from the worker while
open, the stored summary once closed) and the live stream of conversation changes that
feeds the waiting board."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, WebSocket

from api.alerts import visible_to
from api.auth import Auth, in_scope, not_found
from api.deps import ID_PATTERN, id_path
from api.feed import Hub
from api.schemas import ConversationOut, ConversationsOut, errors
from api.sockets import serve, websocket_user
from api.workers import Workers, WorkerUnavailable
from detectors import RuleBook
from detectors.timing_policy import TimingPolicy
from stream.engine.turns import AGENT, BOT, CUSTOMER, ENDED, STARTED, TRANSFER, Entry, replay
from zhijian.core.alerts import iso_from_ms
from zhijian.core.settings import Settings
from zhijian.store.database import Database
from zhijian.store.users import Principal


def without_transcript(payload: str) -> str:
    body = json.loads(payload)
    if "transcript" not in body:
        return payload
    body.pop("transcript")
    return json.dumps(body, ensure_ascii=False)


SENDER_KINDS = {"customer": CUSTOMER, "agent": AGENT, "bot": BOT, "transferred": TRANSFER, "ended": ENDED,
                "started": STARTED}


def with_transcript(body: dict[str, Any], messages: list[dict[str, Any]], policy: TimingPolicy) -> dict[str, Any]:
    """The conversation with its stored transcript; each answer carries its response time, computed from
    the whole transcript (exact whatever order the events arrived in)."""
    entries = [Entry(int(m["ts_ms"]), int(m["seq"]), SENDER_KINDS.get(m["sender"], STARTED), m["agent_id"],
                     m["message_id"]) for m in messages]
    _, replies = replay(entries, policy, initial_owner=body.get("assigned_agent"))
    body["transcript"] = [
        {"ts_ms": m["ts_ms"], "ts": iso_from_ms(int(m["ts_ms"])), "sender": m["sender"], "agent_id": m["agent_id"],
         "message_id": m["message_id"], "text": m["text"], "marks": m["marks"], "late": bool(m["late"]),
         "seq": m["seq"],
         "response_s": round(replies[m["message_id"]] / 1000, 3) if m["message_id"] in replies else None}
        for m in messages]
    body["findings"] = [{"message_id": m["message_id"], "label": label, "start": start, "end": end}
                        for m in messages for label, start, end in m["marks"]]
    return body


def unavailable(exc: WorkerUnavailable) -> HTTPException:
    return HTTPException(status_code=503, detail=f"live state unavailable: {exc.detail}",
                         headers={"Retry-After": str(exc.retry_after_s)})


def router(settings: Settings, store: Database, auth: Auth, hub: Hub, book: RuleBook,
           workers: Workers | None = None) -> APIRouter:
    owners = workers or Workers(settings.worker_urls, settings.partitions)
    api = APIRouter()
    viewer = Depends(auth.allowed("view"))

    @api.get("/api/conversations", response_model=ConversationsOut, responses=errors(401, 403))
    async def list_conversations(
        who: Principal = viewer,
        agent_id: Annotated[str | None, Query(min_length=1, max_length=128, pattern=ID_PATTERN)] = None,
        team_id: Annotated[str | None, Query(min_length=1, max_length=128, pattern=ID_PATTERN)] = None,
        status: Literal["waiting", "open", "closed"] | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        scope = who.scope  # a floor lead's team, an agent's own: the filter cannot widen it
        if ("team_id" in scope and team_id not in (None, scope["team_id"])) or \
                ("agent_id" in scope and agent_id not in (None, scope["agent_id"])):
            return {"conversations": []}
        filters = {"agent_id": agent_id, "team_id": team_id, **scope}
        rows = await asyncio.to_thread(lambda: store.conversations.find(status=status, limit=limit, **filters))
        return {"conversations": rows}

    @api.get("/api/conversations/{conversation_id}", response_model=ConversationOut, responses=errors(401, 403, 404))
    async def get_conversation(conversation_id: Annotated[str, id_path("conversation id")],
                               who: Principal = viewer) -> dict[str, Any]:
        stored = await asyncio.to_thread(store.conversations.get, conversation_id)
        body: dict[str, Any] | None = None
        if stored is None or stored.get("status") != "closed":
            # live from the worker that owns the conversation's partition; 503 (retry) while nobody can
            # answer for it, rather than a stale snapshot that lacks the live waiting time
            try:
                response = await owners.fetch(settings.topics.messages, conversation_id,
                                              f"/zhijian/conversations/{quote(conversation_id, safe='')}/")
            except WorkerUnavailable as exc:
                if stored is not None:
                    in_scope(who, stored)  # outside the caller's scope: 404 as always, not 503
                raise unavailable(exc) from None
            if response.status_code == 200:
                body = response.json()
            # 404 from the owner: not live (closed and purged, or never seen) → the stored record
        if body is None:
            if stored is None:
                raise not_found()
            body = stored
            body["source"] = "stored"
        in_scope(who, body)
        messages = await asyncio.to_thread(store.messages.transcript, conversation_id)
        return with_transcript(body, messages, book.detector(body.get("shop_id")).timing)

    @api.websocket("/ws/conversations")
    async def conversations_socket(websocket: WebSocket) -> None:
        """First the conversations waiting now (longest first), then every change as it happens."""
        who = await websocket_user(websocket, auth)
        if who is None:
            return
        waiting = await asyncio.to_thread(lambda: store.conversations.find(status="waiting", limit=1000, **who.scope))
        state = websocket.app.state
        await serve(websocket, hub, state.connections, who, heartbeat=state.conversation_heartbeat,
                    initial=[json.dumps(row, ensure_ascii=False) for row in waiting], visible=visible_to(who))

    return api
