"""Finding the worker that owns a key, among one or several stream workers.

Live state is partitioned like its input: a conversation lives on the worker that owns the partition of
``chat.messages`` its id hashes to (Kafka's murmur2, as the producer picks it), an agent's tally on the
owner of its partition of the activity topic. The API knows the workers' URLs (``ZHIJIAN_WORKER_URLS``, or
the one ``ZHIJIAN_WORKER_HOST``/``PORT``), reads which partitions each owns from its health page (cached
for a second) and asks the owner. The owner checks again (421 if it no longer owns the key, 503 while
rebalancing), so a moved partition costs one more round, never a stale answer. When no reachable worker
owns the partition — one died and the group has not yet rebalanced, or a rebalance is under way — the
caller gets :class:`WorkerUnavailable`: a 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka.partitioner import murmur2

RETRY_AFTER_S = 2
CACHE_S = 1.0
MISDIRECTED = 421


class WorkerUnavailable(Exception):
    """No worker can answer for this key now; retry after ``retry_after_s``."""

    def __init__(self, detail: str, retry_after_s: int = RETRY_AFTER_S) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after_s = retry_after_s


@dataclass
class WorkerState:
    url: str
    reachable: bool = False
    ready: bool = False
    owns: set[str] = field(default_factory=set)  # "topic:partition"
    error: str = ""


class Workers:
    """The stream workers one API process talks to."""

    def __init__(self, urls: list[str], partitions: int, timeout_s: float = 2.0,
                 client: httpx.AsyncClient | None = None) -> None:
        if not urls:
            raise ValueError("at least one worker URL is needed")
        self.urls = list(urls)
        self.partitions = partitions
        self.timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = client
        self._states: list[WorkerState] = []
        self._states_at = 0.0
        self._lock = asyncio.Lock()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def invalidate(self) -> None:
        self._states_at = 0.0

    async def _probe(self, url: str) -> WorkerState:
        state = WorkerState(url)
        try:
            response = await self.client.get(f"{url}/zhijian/health/")
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            state.error = type(exc).__name__
            return state
        state.reachable = True
        state.ready = bool(body.get("ready")) and not body.get("rebalancing")
        if state.ready:
            state.owns = {str(tp) for tp in body.get("owns", [])}
        return state

    async def expand(self) -> list[str]:
        """The configured URLs, with each ``dns+http://name:port`` replaced by one URL per address the name
        resolves to (a Kubernetes headless Service, or a compose service scaled with ``--scale``)."""
        out: list[str] = []
        loop = asyncio.get_running_loop()
        for url in self.urls:
            if not url.startswith("dns+"):
                out.append(url)
                continue
            parsed = httpx.URL(url[4:])
            port = parsed.port or 80
            try:
                infos = await loop.getaddrinfo(parsed.host, port, type=socket.SOCK_STREAM)
            except OSError:
                continue  # nobody there now: the partitions are unowned → 503 until it resolves
            hosts = sorted({str(info[4][0]) for info in infos})
            out.extend(f"{parsed.scheme}://{f'[{h}]' if ':' in h else h}:{port}" for h in hosts)
        return out

    async def states(self, fresh: bool = False) -> list[WorkerState]:
        async with self._lock:
            if fresh or time.monotonic() - self._states_at > CACHE_S:
                urls = await self.expand()
                self._states = list(await asyncio.gather(*(self._probe(url) for url in urls)))
                self._states_at = time.monotonic()
            return self._states

    def partition_of(self, key: str) -> int:
        """The partition Kafka's default (murmur2) partitioner picks for ``key`` (as stream.agents does)."""
        return int(murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % self.partitions

    async def owner(self, topic: str, key: str, fresh: bool = False) -> str:
        """The URL of the worker that owns ``key`` of ``topic`` (raises WorkerUnavailable)."""
        partition = self.partition_of(key)
        wanted = f"{topic}:{partition}"
        states = await self.states(fresh)
        owners = [s.url for s in states if wanted in s.owns]
        if len(owners) == 1:
            return owners[0]
        if not states:
            raise WorkerUnavailable("no stream worker is known (the worker address resolves to nothing)")
        if len(owners) > 1:
            raise WorkerUnavailable(f"partition {partition} is changing hands (a rebalance is under way)")
        if any(s.reachable and not s.ready for s in states):
            raise WorkerUnavailable("the stream workers are rebalancing; live state is back in a few seconds")
        down = sum(not s.reachable for s in states)
        raise WorkerUnavailable(f"no reachable worker owns partition {partition} now ({down} of {len(states)} "
                                "workers unreachable); the group reassigns it within the session timeout")

    async def fetch(self, topic: str, key: str, path: str) -> httpx.Response:
        """GET ``path`` from the owner of ``key``: its answer (200 or 404), or WorkerUnavailable."""
        last = ""
        for attempt in range(2):
            url = await self.owner(topic, key, fresh=attempt > 0)
            try:
                response = await self.client.get(f"{url}{path}")
            except httpx.HTTPError as exc:
                last = f"the owning worker did not answer ({type(exc).__name__})"
                self.invalidate()
                continue
            if response.status_code in (MISDIRECTED, 503):
                last = "the partition moved or its worker is rebalancing"
                self.invalidate()
                continue
            return response
        raise WorkerUnavailable(last)

    async def gather(self, topic: str, path: str) -> list[dict[str, Any]]:
        """GET ``path`` from every worker; their ``partitions`` must cover every partition of ``topic``
        exactly once, else WorkerUnavailable (a partial or doubled answer is never returned)."""
        states = [s for s in await self.states() if s.reachable]
        if not states:
            raise WorkerUnavailable("no stream worker is reachable")

        async def one(url: str) -> httpx.Response | None:
            try:
                return await self.client.get(f"{url}{path}")
            except httpx.HTTPError:
                return None

        responses = await asyncio.gather(*(one(s.url) for s in states))
        bodies: list[dict[str, Any]] = []
        covered: list[int] = []
        for response in responses:
            if response is None or response.status_code != 200:
                continue
            body = response.json()
            covered.extend(int(p) for p in body.get("partitions", []))
            bodies.append(body)
        if sorted(covered) != list(range(self.partitions)):
            self.invalidate()
            missing = sorted(set(range(self.partitions)) - set(covered))
            detail = (f"partitions {missing} of {topic} have no ready owner now" if missing
                      else "a rebalance is under way (a partition has two owners)")
            raise WorkerUnavailable(detail)
        return bodies
