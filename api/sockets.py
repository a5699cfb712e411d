"""Serving a hub to one (already authenticated) WebSocket client: first frames, then live
frames that pass the client's scope filter."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable

from fastapi import WebSocket, WebSocketDisconnect

from api.auth import POLICY_VIOLATION, Auth
from api.feed import Hub
from zhijian.store.users import Principal


async def websocket_user(websocket: WebSocket, auth: Auth) -> Principal | None:
    """The signed-in user of a WebSocket, or None after closing it with 1008."""
    who = await asyncio.to_thread(auth.websocket_principal, websocket)
    if who is None or not who.can("view"):
        await websocket.accept()
        await websocket.close(code=POLICY_VIOLATION, reason="missing or invalid token")
        return None
    return who


async def serve(websocket: WebSocket, hub: Hub, initial: Iterable[str] = (),
                visible: Callable[[str], bool] | None = None) -> None:
    await websocket.accept()
    queue = hub.subscribe()  # subscribe before the first frames: nothing falls in between
    receiver = asyncio.create_task(_drain(websocket))
    try:
        for first in initial:
            await websocket.send_text(first)
        while True:
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if receiver in done:
                getter.cancel()
                return
            payload = getter.result()
            if payload is None:
                await websocket.close(code=1013, reason="too slow; reconnect")
                return
            if visible is None or visible(payload):
                await websocket.send_text(payload)
    except (WebSocketDisconnect, RuntimeError):
        return
    finally:
        hub.unsubscribe(queue)
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await receiver


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) client frames so a disconnect is noticed at once."""
    try:
        while True:
            await websocket.receive_text()
    except (WebSocketDisconnect, RuntimeError):
        return
