"""A small client of ``POST /api/events`` with a producer's ``send``/``flush``/``stop``, so the simulator
(``zhijian simulate --via http``) and the bench can feed the pipeline over HTTP like a chat platform."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import httpx

log = logging.getLogger(__name__)
logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the simulator's log


class HttpProducer:
    """Collects events for ``linger_s`` (or ``batch`` events) and posts them as one JSON array;
    honours 429/503 Retry-After by waiting and sending the same batch again."""

    def __init__(self, api_url: str, token: str, *, batch: int = 200, linger_s: float = 0.01) -> None:
        self.url = api_url.rstrip("/") + "/api/events"
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.batch, self.linger_s = batch, linger_s
        self.client = httpx.AsyncClient(timeout=30.0)
        self.pending: list[bytes] = []
        self.sent = 0
        self.rejected = 0
        self._flusher: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        return None

    async def send(self, _topic: str, value: bytes, key: bytes | None = None) -> None:
        self.pending.append(value)
        if len(self.pending) >= self.batch:
            await self.flush()
        elif self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._later())

    async def _later(self) -> None:
        await asyncio.sleep(self.linger_s)
        await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            while self.pending:
                chunk, self.pending = self.pending[:self.batch], self.pending[self.batch:]
                await self._post(b"[" + b",".join(chunk) + b"]")

    async def _post(self, body: bytes) -> None:
        for _ in range(30):
            response = await self.client.post(self.url, content=body, headers=self.headers)
            if response.status_code in (429, 503):
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                continue
            if response.status_code >= 400 and response.status_code != 422:
                raise RuntimeError(f"POST /api/events answered {response.status_code}: {response.text[:200]}")
            result: dict[str, Any] = json.loads(response.content)
            self.sent += int(result.get("accepted", 0))
            self.rejected += int(result.get("rejected", 0))
            return
        raise RuntimeError("POST /api/events kept answering 429/503")

    async def stop(self) -> None:
        if self._flusher is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush()
        await self.client.aclose()
