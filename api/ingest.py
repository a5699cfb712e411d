"""``POST /api/events``: chat events over HTTP, for platforms that deliver by callback.

The body is one event, a JSON array of events, or JSON lines; with a source's field mapping
(:mod:`zhijian.core.ingest_mapping`) it is the platform's own callback body. Every item is validated
with the contract (:func:`zhijian.core.contract.parse_event`) and answered on its own: good ones are
produced to ``chat.messages`` keyed by ``conversation_id``, bad ones go to ``chat.deadletter``
with the original bytes and the reason (headers as the worker writes them). A short memory of
recent ``message_id`` values answers a re-sent event as a duplicate (the pipeline drops
duplicates too). Tokens: an ingest source's token (``zhijian source add``), or an admin's.
Limits: the body size (413) and the events in flight to the broker (429 with Retry-After).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from api.auth import Auth, token_from
from api.schemas import IngestOut, IngestStatsOut, errors
from detectors import RuleBook
from zhijian.core.contract import ChatEvent, InvalidEvent, Limits, parse_event
from zhijian.core.ingest_mapping import MappingError, Skipped, apply_mapping, check_mapping, items_of
from zhijian.core.settings import Settings
from zhijian.store.database import Database
from zhijian.store.sources import Source, token_digest

log = logging.getLogger(__name__)
SOURCE_CACHE_S = 30.0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


@dataclass(frozen=True)
class IngestLimits:
    max_body_bytes: int = 1 << 20
    max_in_flight: int = 20_000  # events sent to the producer and not yet acknowledged
    recent_ids: int = 100_000

    @classmethod
    def from_env(cls) -> IngestLimits:
        return cls(max_body_bytes=_env_int("ZHIJIAN_INGEST_MAX_BYTES", 1 << 20),
                   max_in_flight=_env_int("ZHIJIAN_INGEST_MAX_IN_FLIGHT", 20_000),
                   recent_ids=_env_int("ZHIJIAN_INGEST_RECENT_IDS", 100_000))


@dataclass
class IngestCounters:
    requests: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    skipped: int = 0
    throttled: int = 0  # requests answered 429
    too_large: int = 0  # requests answered 413
    failed: int = 0  # events the broker did not take (answered 503; the client re-sends)
    per_source: dict[str, int] = field(default_factory=dict)


@dataclass
class Item:
    index: int
    raw: bytes  # the original bytes of this item (what the dead-letter record keeps)
    status: str = "accepted"
    reason: str | None = None
    event: ChatEvent | None = None
    value: bytes = b""

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "status": self.status}
        if self.event is not None:
            out["message_id"] = self.event.message_id
        if self.reason is not None:
            out["reason"] = self.reason
        return out


def split_body(body: bytes, mapping: dict[str, Any] | None) -> list[tuple[bytes, Any, str | None]]:
    """(original bytes, decoded item or None, decode error) per item of one body."""
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        decoded = None
    else:
        items = items_of(decoded, mapping)
        if len(items) == 1 and not isinstance(decoded, list):
            return [(body, items[0], None)]
        return [(json.dumps(i, ensure_ascii=False).encode(), i, None) for i in items]
    out: list[tuple[bytes, Any, str | None]] = []
    for line in body.split(b"\n"):  # JSON lines: one bad line does not spoil the others
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except (ValueError, RecursionError):
            try:  # the contract's own wording for the problem (not UTF-8, not JSON …)
                parse_event(line, now_ms=0)
                reason = "value is not valid JSON"
            except InvalidEvent as exc:
                reason = exc.reason
            out.append((line, None, reason))
            continue
        if mapping and mapping.get("items") and isinstance(items_of(item, mapping), list):
            out.extend((json.dumps(i, ensure_ascii=False).encode(), i, None) for i in items_of(item, mapping))
        else:
            out.append((line, item, None))
    return out


class Ingest:
    """The API process's ingest: one producer (started in the app's lifespan), limits, counters."""

    def __init__(self, settings: Settings, limits: IngestLimits | None = None) -> None:
        self.settings = settings
        self.limits = limits or IngestLimits.from_env()
        self.contract = Limits(max_text_chars=settings.max_text_chars, max_future_skew_s=settings.max_future_skew_s)
        self.counters = IngestCounters()
        self.producer: AIOKafkaProducer | None = None
        self.in_flight = 0
        self.recent: OrderedDict[str, None] = OrderedDict()
        self._starter: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect in the background (the API comes up even while the broker is down: 503 until then)."""
        self._starter = asyncio.create_task(self._connect())

    async def _connect(self) -> None:
        while True:
            producer = AIOKafkaProducer(bootstrap_servers=self.settings.bootstrap_servers, acks="all",
                                        linger_ms=self.settings.producer_linger_ms)
            try:
                await producer.start()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("ingest producer cannot reach the broker (%s); retrying in 2 s", type(exc).__name__)
                with contextlib.suppress(Exception):
                    await producer.stop()
                await asyncio.sleep(2.0)
                continue
            self.producer = producer
            return

    async def stop(self) -> None:
        if self._starter is not None:
            self._starter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starter
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None

    def seen(self, message_id: str) -> bool:
        if message_id in self.recent:
            self.recent.move_to_end(message_id)
            return True
        return False

    def remember(self, message_id: str) -> None:
        self.recent[message_id] = None
        while len(self.recent) > self.limits.recent_ids:
            self.recent.popitem(last=False)

    def validate(self, body: bytes, mapping: dict[str, Any] | None, now_ms: int) -> list[Item]:
        items: list[Item] = []
        batch_ids: set[str] = set()
        for index, (raw, decoded, error) in enumerate(split_body(body, mapping)):
            item = Item(index, raw)
            items.append(item)
            if error is not None:
                item.status, item.reason = "rejected", error
                continue
            try:
                mapped = apply_mapping(decoded, mapping)
            except Skipped as skip:
                item.status, item.reason = "skipped", skip.reason
                continue
            value = raw if mapped is decoded else json.dumps(mapped, ensure_ascii=False).encode()
            try:
                event = parse_event(value, now_ms=now_ms, limits=self.contract)
            except InvalidEvent as exc:
                prefix = "" if mapped is decoded else "after mapping: "
                item.status, item.reason = "rejected", prefix + exc.reason
                continue
            item.event, item.value = event, value
            if event.message_id in batch_ids or self.seen(event.message_id):
                item.status = "duplicate"
                continue
            batch_ids.add(event.message_id)
        return items

    def _dead_headers(self, reason: str, source: Source, index: int) -> list[tuple[str, bytes]]:
        return [("zhijian-reason", reason.encode("utf-8", "replace")), ("zhijian-source-topic", b"http:/api/events"),
                ("zhijian-source-partition", b"-1"), ("zhijian-source-offset", b"-1"),
                ("zhijian-source", source.name.encode()), ("zhijian-source-index", str(index).encode())]

    def _done(self, _: Any) -> None:
        self.in_flight -= 1

    async def submit(self, source: Source, body: bytes) -> JSONResponse:
        counters = self.counters
        counters.requests += 1
        producer = self.producer
        if producer is None:
            return JSONResponse({"detail": "the broker is not reachable yet"}, status_code=503,
                                headers={"Retry-After": "2"})
        if self.in_flight >= self.limits.max_in_flight:
            counters.throttled += 1
            return JSONResponse({"detail": "the producer's buffer is full"}, status_code=429,
                                headers={"Retry-After": "1"})
        items = self.validate(body, source.mapping, int(time.time() * 1000))
        good = [i for i in items if i.status == "accepted"]
        if self.in_flight + len(good) > self.limits.max_in_flight and self.in_flight > 0:
            counters.throttled += 1
            return JSONResponse({"detail": "the producer's buffer is full"}, status_code=429,
                                headers={"Retry-After": "1"})
        topics = self.settings.topics
        sends: list[tuple[Item, asyncio.Future[Any]]] = []
        failures: list[tuple[Item, str]] = []
        for item in items:
            try:
                if item.status == "rejected":
                    key = None
                    with contextlib.suppress(ValueError, RecursionError, AttributeError, TypeError):
                        conv = json.loads(item.raw).get("conversation_id")
                        key = conv.encode() if isinstance(conv, str) else None
                    future = await producer.send(topics.deadletter, item.raw, key=key,
                                                 headers=self._dead_headers(item.reason or "", source, item.index))
                elif item.status == "accepted" and item.event is not None:
                    future = await producer.send(topics.messages, item.value,
                                                 key=item.event.conversation_id.encode())
                else:
                    continue
            except Exception as exc:  # the broker refused: this item is not taken
                failures.append((item, type(exc).__name__))
                continue
            self.in_flight += 1
            future.add_done_callback(self._done)
            sends.append((item, future))
        outcomes = await asyncio.gather(*(f for _, f in sends), return_exceptions=True)
        for (item, _), outcome in zip(sends, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                failures.append((item, type(outcome).__name__))
            elif item.status == "accepted" and item.event is not None:
                self.remember(item.event.message_id)
        for item, why in failures:
            item.status, item.reason = "failed", f"the broker did not take it ({why}); send it again"
        tally = {s: sum(1 for i in items if i.status == s)
                 for s in ("accepted", "rejected", "duplicate", "skipped", "failed")}
        counters.accepted += tally["accepted"]
        counters.rejected += tally["rejected"]
        counters.duplicates += tally["duplicate"]
        counters.skipped += tally["skipped"]
        counters.failed += tally["failed"]
        counters.per_source[source.name] = counters.per_source.get(source.name, 0) + tally["accepted"]
        body_out = {**tally, "results": [i.result() for i in items]}
        if tally["failed"]:
            return JSONResponse(body_out, status_code=503, headers={"Retry-After": "2"})
        code = 422 if items and tally["rejected"] == len(items) else 200
        if not items:
            body_out["detail"] = "no events in the body"
            code = 422
        return JSONResponse(body_out, status_code=code)


class SourceResolver:
    """Token → ingest source (cached briefly: a callback platform posts many times a second)."""

    def __init__(self, store: Database, auth: Auth, book: RuleBook | None) -> None:
        self.store, self.auth, self.book = store, auth, book
        self._cache: dict[str, tuple[float, Source]] = {}

    def _document_mapping(self, name: str) -> dict[str, Any] | None:
        if self.book is None:
            return None
        section = (self.book.ruleset.document.get("ingest") or {}).get("sources") or {}
        found = section.get(name) if isinstance(section, dict) else None
        if found is None:
            return None
        try:
            return check_mapping(found)
        except MappingError as exc:  # a bad section in the rule set: the body is taken as contract events
            log.warning("ignoring the mapping of source %s in the rule set: %s", name, exc)
            return None

    def resolve(self, token: str | None) -> Source | None:
        if not token:
            return None
        digest = token_digest(token)
        cached = self._cache.get(digest)
        now = time.monotonic()
        if cached is not None and now - cached[0] < SOURCE_CACHE_S:
            source = cached[1]
        else:
            found = self.store.sources.for_token(token) if token.startswith("src_") else None
            if found is None:
                principal = self.auth.principal(token)
                return Source("admin", None, admin=True) if principal is not None and principal.role == "admin" \
                    else None
            if len(self._cache) > 1000:
                self._cache.clear()
            self._cache[digest] = (now, found)
            source = found
        if source.mapping is None:  # a mapping in the rule-set document (live, like the rules)
            mapping = self._document_mapping(source.name)
            if mapping is not None:
                return Source(source.name, mapping)
        return source

    def dependency(self) -> Callable[[Request], Source]:
        def dependency(request: Request) -> Source:
            source = self.resolve(token_from(request.headers))
            if source is None:
                raise HTTPException(status_code=401, detail="missing or invalid ingest token",
                                    headers={"WWW-Authenticate": "Bearer"})
            return source
        return dependency


DRAIN_MAX_BYTES = 64 * 1024 * 1024  # read and dropped after the limit, so the sender gets its 413


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None once it is over ``limit`` bytes. The rest is read and dropped (up to DRAIN_MAX_BYTES):
    a sender that writes its whole body before reading the answer (most HTTP clients) then gets the 413 and its
    reason instead of a broken pipe; a body larger still is cut off."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + DRAIN_MAX_BYTES:
        return None  # not worth reading: the connection is closed after the answer
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit + DRAIN_MAX_BYTES:
            return None
        if size <= limit:
            chunks.append(chunk)
        else:
            chunks.clear()  # over the limit: keep reading, keep nothing
    return None if size > limit else b"".join(chunks)


def router(ingest: Ingest, resolver: SourceResolver, auth: Auth) -> APIRouter:
    api = APIRouter()
    ingest_source = Depends(resolver.dependency())

    @api.post("/api/events", response_model=IngestOut,
              responses={**errors(401, 413, 429), 422: {"model": IngestOut, "description": "no event was taken"},
                         503: {"model": IngestOut, "description": "the broker is down or did not take some events"}},
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                  "description": "one event, a list of events or {\"events\": [...]} (a source's own shape "
                                 "with its mapping)"}}}}})
    async def post_events(request: Request, source: Source = ingest_source) -> JSONResponse:
        body = await read_limited(request, ingest.limits.max_body_bytes)
        if body is None:
            ingest.counters.too_large += 1
            return JSONResponse({"detail": f"the body is over {ingest.limits.max_body_bytes} bytes; "
                                           "send smaller batches"}, status_code=413)
        return await ingest.submit(source, body)

    @api.get("/api/events/stats", dependencies=[Depends(auth.allowed("view"))], response_model=IngestStatsOut,
             responses=errors(401, 403))
    async def stats() -> dict[str, Any]:
        c = ingest.counters
        return {"connected": ingest.producer is not None, "in_flight": ingest.in_flight,
                "max_in_flight": ingest.limits.max_in_flight, "max_body_bytes": ingest.limits.max_body_bytes,
                "requests": c.requests, "accepted": c.accepted, "rejected": c.rejected, "duplicates": c.duplicates,
                "skipped": c.skipped, "throttled": c.throttled, "too_large": c.too_large, "failed": c.failed,
                "per_source": dict(c.per_source)}

    return api
