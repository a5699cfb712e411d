"""Conversation endpoints: the list (from SQL), one conversation (live from the worker while
open, the stored summary once closed) and the live stream of conversation changes that
feeds the waiting board."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Depends, HTTPException, Query, WebSocket

from api.auth import TokenAuth
from api.feed import Hub
from api.sockets import serve
from zhijian.settings import Settings
from zhijian.storage import Store


def without_transcript(payload: str) -> str:
    body = json.loads(payload)
    if "transcript" not in body:
        return payload
    body.pop("transcript")
    return json.dumps(body, ensure_ascii=False)


def router(settings: Settings, store: Store, auth: TokenAuth, hub: Hub) -> APIRouter:
    api = APIRouter()
    authorised = [Depends(auth.require)]

    @api.get("/api/conversations", dependencies=authorised)
    async def list_conversations(
        agent_id: str | None = None,
        team_id: str | None = None,
        status: Literal["waiting", "open", "closed"] | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        rows = await asyncio.to_thread(
            lambda: store.list_conversations(agent_id=agent_id, team_id=team_id, status=status, limit=limit))
        return {"conversations": rows}

    @api.get("/api/conversations/{conversation_id}", dependencies=authorised)
    async def get_conversation(conversation_id: str) -> dict[str, Any]:
        stored = await asyncio.to_thread(store.get_conversation, conversation_id)
        if stored is None or stored.get("status") != "closed":
            try:
                async with httpx.AsyncClient(timeout=3.0) as client:
                    response = await client.get(f"{settings.worker_url}/zhijian/conversations/{conversation_id}/")
                if response.status_code == 200:
                    live: dict[str, Any] = response.json()
                    return live
            except httpx.HTTPError:
                pass  # the worker is down or busy: fall back to the stored snapshot
        if stored is None:
            raise HTTPException(status_code=404, detail=f"no conversation {conversation_id!r}")
        stored["source"] = "stored"
        return stored

    @api.websocket("/ws/conversations")
    async def conversations_socket(websocket: WebSocket) -> None:
        """First the conversations waiting now (longest first), then every change as it happens."""
        waiting = await asyncio.to_thread(lambda: store.list_conversations(status="waiting", limit=1000))
        await serve(websocket, auth, hub, [json.dumps(row, ensure_ascii=False) for row in waiting])

    return api
