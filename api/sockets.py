"""Serving a hub to one WebSocket client: token check, optional first frames, live frames."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from fastapi import WebSocket, WebSocketDisconnect

from api.auth import POLICY_VIOLATION, TokenAuth
from api.feed import Hub


async def serve(websocket: WebSocket, auth: TokenAuth, hub: Hub, initial: Iterable[str] = ()) -> None:
    await websocket.accept()
    if not auth.websocket_ok(websocket):
        await websocket.close(code=POLICY_VIOLATION, reason="missing or invalid token")
        return
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
