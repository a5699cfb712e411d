"""Serving a hub to one WebSocket client: sign-in by one-time ticket, first frames, then live
frames that pass the client's scope filter, a heartbeat every few seconds, and a 4401 close
when the client's session ends."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from api.auth import POLICY_VIOLATION, SIGNED_OUT, Auth
from api.connections import Connections
from api.feed import Hub
from zhijian.store.users import Principal

HEARTBEAT_S = 5.0
Heartbeat = Callable[[], Awaitable[dict[str, Any]]]


async def websocket_user(websocket: WebSocket, auth: Auth) -> Principal | None:
    """The user of a WebSocket's one-time ``ticket``, or None after closing it with 1008."""
    who = auth.tickets.redeem(websocket.query_params.get("ticket"))
    if who is None or not who.can("view"):
        await websocket.accept()
        await websocket.close(code=POLICY_VIOLATION, reason="missing, used or expired ticket")
        return None
    return who


def heartbeat_frame(feed_ok: bool, **extra: Any) -> dict[str, Any]:
    return {"kind": "heartbeat", "ts_ms": int(time.time() * 1000), "feed": "ok" if feed_ok else "down", **extra}


async def _frames(initial: Iterable[str] | AsyncIterable[str]) -> AsyncIterable[str]:
    if isinstance(initial, AsyncIterable):
        async for frame in initial:
            yield frame
    else:
        for frame in initial:
            yield frame


async def serve(websocket: WebSocket, hub: Hub, connections: Connections, who: Principal, *,
                heartbeat: Heartbeat, initial: Iterable[str] | AsyncIterable[str] = (),
                visible: Callable[[str], bool] | None = None, heartbeat_s: float = HEARTBEAT_S) -> None:
    """``initial`` frames (produced after subscribing, so nothing falls in between), then the live
    frames ``visible`` admits (it may also drop what ``initial`` already sent)."""
    await websocket.accept()
    queue = hub.subscribe()
    connection = connections.open(who)
    receiver = asyncio.create_task(_drain(websocket))
    signed_out = asyncio.create_task(connection.signed_out.wait())
    getter: asyncio.Task[str | None] | None = None
    try:
        async for first in _frames(initial):
            if receiver.done() or signed_out.done():
                break
            await websocket.send_text(first)
        next_beat = time.monotonic() + heartbeat_s
        while True:
            if getter is None:
                getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, receiver, signed_out}, return_when=asyncio.FIRST_COMPLETED,
                                         timeout=max(0.0, next_beat - time.monotonic()))
            if receiver in done:
                return
            if signed_out in done:
                await websocket.close(code=SIGNED_OUT, reason="signed out")
                return
            if getter in done:
                payload = getter.result()
                getter = None
                if payload is None:
                    await websocket.close(code=1013, reason="too slow; reconnect")
                    return
                if visible is None or visible(payload):
                    await websocket.send_text(payload)
            if time.monotonic() >= next_beat:
                await websocket.send_text(json.dumps(await heartbeat()))
                next_beat = time.monotonic() + heartbeat_s
    except (WebSocketDisconnect, RuntimeError):
        return
    finally:
        hub.unsubscribe(queue)
        connections.close(connection)
        for task in (receiver, signed_out, getter):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) client frames so a disconnect is noticed at once."""
    try:
        while True:
            await websocket.receive_text()
    except (WebSocketDisconnect, RuntimeError):
        return
