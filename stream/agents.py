"""Faust agents and timers: the live pipeline.

- ``pipeline`` reads ``chat.messages`` and the timer ticks: validates (bad input →
  ``chat.deadletter`` with the original bytes and a reason), re-keys mis-partitioned events,
  de-duplicates by ``message_id``, runs the detectors and the response-time engine, emits
  alerts, per-agent activity and conversation snapshots.
- timers scan an in-memory index of this worker's conversations and send ticks: a customer
  waiting past a threshold, a quiet conversation to close, a closed one to forget.
- ``tally`` reads the activity (keyed by agent_id) into the per-agent table.
- ``stream.persistence`` writes alerts and conversations to SQL: the durable record.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import faust
from aiokafka.partitioner import murmur2

from detectors import RuleBook
from stream import persistence
from stream import rules as rules_module
from stream import tables as tables_module
from stream import topics as topics_module
from stream.pipeline import Outcome, policy_for, process_event, process_tick
from stream.tally import apply_activity
from stream.timers import ConversationIndex
from zhijian.contract import InvalidEvent, Limits, parse_event
from zhijian.quality_store import QualityStore
from zhijian.settings import Settings

log = logging.getLogger(__name__)
WAITING_SCAN_S = 0.1  # customer_waiting fires within this (plus a tick's round trip) of its threshold
HOUSEKEEPING_S = 1.0
RESYNC_S = 5.0


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
        self.conversations_persisted = 0
        self.scored = 0
        self.ticks = 0
        self.first_at = 0.0  # wall-clock time of the first and latest processed event
        self.last_at = 0.0

    def as_dict(self) -> dict[str, float]:
        return dict(vars(self))


def register(app: faust.App, settings: Settings) -> None:
    topics = topics_module.declare(app, settings)
    tables = tables_module.declare(app, settings)
    limits = Limits(settings.max_text_chars, settings.max_future_skew_s)
    counters = Counters()
    store = QualityStore(settings.database_url)
    book = RuleBook(rules_module.initial_ruleset(store))
    app.zhijian_counters = counters  # type: ignore[attr-defined]
    app.zhijian_rulebook = book  # type: ignore[attr-defined]
    app.zhijian_tables = tables  # type: ignore[attr-defined]
    app.zhijian_store = store  # type: ignore[attr-defined]

    index = ConversationIndex(lambda shop_id: policy_for(book, shop_id))
    app.zhijian_index = index  # type: ignore[attr-defined]

    async def emit(outcome: Outcome, key: bytes, message: Any) -> None:
        for alert in outcome.alerts:
            await topics.alerts.send(key=key, value=alert.to_json())
        counters.alerts += len(outcome.alerts)
        for record in outcome.activity:
            record["src_topic"] = message.topic
            record["src_partition"] = message.partition
            record["src_offset"] = message.offset
            await topics.agent_activity.send(
                key=str(record["agent_id"]).encode(), value=json.dumps(record, ensure_ascii=False).encode()
            )
        for snap in outcome.snapshots:
            await topics.conversations.send(key=key, value=json.dumps(snap, ensure_ascii=False).encode())

    async def apply_tick(key: bytes | None, raw: bytes | None, message: Any, now_ms: int) -> None:
        try:
            conversation_id = (key or b"").decode()
            tick = json.loads(raw or b"")
        except (UnicodeDecodeError, ValueError):
            log.warning("ignoring an unreadable tick: %.80r", raw)
            return
        state = tables.conversations.get(conversation_id)
        outcome = process_tick(state, tick, now_ms=now_ms, book=book)
        await emit(outcome, key or b"", message)
        if outcome.delete:
            tables.conversations.pop(conversation_id, None)
            index.observe(conversation_id, None)
        elif outcome.state is not state:
            tables.conversations[conversation_id] = outcome.state
            index.observe(conversation_id, outcome.state)
        counters.ticks += 1

    @app.agent(topics.inbound, name="zhijian.pipeline")
    async def pipeline(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            message = event.message
            raw: bytes | None = event.value
            now_ms = int(time.time() * 1000)
            if message.topic == settings.topics.ticks:
                await apply_tick(event.key, raw, message, now_ms)
                continue
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
            await emit(outcome, key, message)
            tables.conversations[chat.conversation_id] = outcome.state
            index.observe(chat.conversation_id, outcome.state)
            counters.processed += 1
            counters.last_at = time.time()
            if not counters.first_at:
                counters.first_at = counters.last_at

    async def send_ticks(ticks: list[tuple[str, dict[str, Any]]]) -> None:
        for conversation_id, tick in ticks:
            await topics.ticks.send(key=conversation_id.encode(), value=json.dumps(tick).encode())

    @app.timer(interval=WAITING_SCAN_S)  # type: ignore[untyped-decorator]
    async def waiting_timer() -> None:
        await send_ticks(index.waiting_ticks(int(time.time() * 1000)))

    @app.timer(interval=HOUSEKEEPING_S)  # type: ignore[untyped-decorator]
    async def housekeeping_timer() -> None:
        await send_ticks(index.housekeeping_ticks(int(time.time() * 1000)))

    @app.timer(interval=RESYNC_S)  # type: ignore[untyped-decorator]
    async def resync_timer() -> None:
        index.resync(list(tables.conversations.items()))

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

    persistence.register(app, topics, store, counters, book)
