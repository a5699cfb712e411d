"""Faust agents: the live pipeline.

- ``pipeline`` reads ``chat.messages``: validates (bad input → ``chat.deadletter`` with
  the original bytes and a reason), re-keys mis-partitioned events, de-duplicates by
  ``message_id``, runs the detectors and first-response timing, emits alerts and
  per-agent activity.
- ``tally`` reads the activity (keyed by agent_id) into the per-agent table.
- ``persist`` writes alerts to SQL in batches: the durable record.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import faust
from aiokafka.partitioner import murmur2

from detectors import RuleBook
from stream import rules as rules_module
from stream import tables as tables_module
from stream import topics as topics_module
from stream.pipeline import process_event
from stream.tally import apply_activity
from zhijian.contract import InvalidEvent, Limits, parse_event
from zhijian.settings import Settings
from zhijian.storage import Store

log = logging.getLogger(__name__)
PERSIST_BATCH = 500
PERSIST_WITHIN_S = 0.2


def expected_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default (murmur2) partitioner picks for ``key``."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def deadletter_headers(reason: str, message: Any) -> list[tuple[str, bytes]]:
    return [
        ("zhijian-reason", reason.encode()),
        ("zhijian-source-topic", str(message.topic).encode()),
        ("zhijian-source-partition", str(message.partition).encode()),
        ("zhijian-source-offset", str(message.offset).encode()),
    ]


class Counters:
    """Process-local counters, shown on the worker's health page."""

    def __init__(self) -> None:
        self.processed = 0
        self.deadlettered = 0
        self.duplicates = 0
        self.rekeyed = 0
        self.alerts = 0
        self.persisted = 0
        self.first_at = 0.0  # wall-clock time of the first and latest processed event
        self.last_at = 0.0

    def as_dict(self) -> dict[str, float]:
        return dict(vars(self))


def register(app: faust.App, settings: Settings) -> None:
    topics = topics_module.declare(app, settings)
    tables = tables_module.declare(app, settings)
    limits = Limits(settings.max_text_chars, settings.max_future_skew_s)
    counters = Counters()
    store = Store(settings.database_url)
    book = RuleBook(rules_module.initial_ruleset(store))
    app.zhijian_counters = counters  # type: ignore[attr-defined]
    app.zhijian_rulebook = book  # type: ignore[attr-defined]
    app.zhijian_tables = tables  # type: ignore[attr-defined]
    app.zhijian_store = store  # type: ignore[attr-defined]

    @app.agent(topics.messages, name="zhijian.pipeline")
    async def pipeline(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            message = event.message
            raw: bytes | None = event.value
            now_ms = int(time.time() * 1000)
            try:
                chat = parse_event(raw, now_ms=now_ms, limits=limits)
            except InvalidEvent as exc:
                counters.deadlettered += 1
                await topics.deadletter.send(
                    key=event.key, value=raw if raw is not None else b"",
                    headers=deadletter_headers(exc.reason, message),
                )
                continue
            key = chat.conversation_id.encode()
            if message.partition != expected_partition(key, settings.partitions):
                # Conversation state lives in the partition of its key: forward the
                # original bytes there (the copy is processed once, this one skipped).
                counters.rekeyed += 1
                await topics.messages.send(key=key, value=raw)
                continue
            outcome = process_event(tables.conversations.get(chat.conversation_id), chat, now_ms=now_ms, book=book)
            if outcome.duplicate:
                counters.duplicates += 1
                continue
            for alert in outcome.alerts:
                await topics.alerts.send(key=key, value=alert.to_json())
            counters.alerts += len(outcome.alerts)
            for record in outcome.activity:
                record["src_partition"] = message.partition
                record["src_offset"] = message.offset
                await topics.agent_activity.send(
                    key=str(record["agent_id"]).encode(),
                    value=json.dumps(record, ensure_ascii=False).encode(),
                )
            tables.conversations[chat.conversation_id] = outcome.state
            counters.processed += 1
            counters.last_at = time.time()
            if not counters.first_at:
                counters.first_at = counters.last_at

    @app.task  # type: ignore[untyped-decorator]
    async def follow_rules() -> None:
        await rules_module.follow(settings.bootstrap_servers, settings.topics.rules, book)

    @app.agent(topics.agent_activity, name="zhijian.tally")
    async def tally(stream: faust.StreamT[Any]) -> None:
        async for value in stream:
            record = json.loads(value)
            agent_id = record["agent_id"]
            updated, applied = apply_activity(tables.agent_tally.get(agent_id), record)
            if applied:
                tables.agent_tally[agent_id] = updated

    @app.agent(topics.alerts, name="zhijian.persist")
    async def persist(stream: faust.StreamT[Any]) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, store.create_schema)
        async for batch in stream.take(PERSIST_BATCH, within=PERSIST_WITHIN_S):
            records = []
            for value in batch:
                try:
                    records.append(json.loads(value))
                except (TypeError, ValueError):
                    log.warning("skipping an unreadable record on the alerts topic: %.80r", value)
            delay = 0.5
            while True:  # the database may be down: hold the stream (backpressure), keep the alerts
                try:
                    counters.persisted += await loop.run_in_executor(None, store.save_alerts, records)
                    break
                except Exception:
                    log.exception("saving %d alerts failed; retrying in %.1f s", len(records), delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
