"""Agents that write the durable record to SQL in batches: alerts, conversation snapshots (for
closed conversations also their conversation-level findings and scores), and the transcript
(messages with their findings' spans; agent findings become appealable rows).

Every write is idempotent (alert_id with revision, conversation_id with version, message and
finding ids), so a replay after a crash leaves the same rows. If the database is down an agent
holds its stream and retries: back-pressure, nothing dropped. A record that cannot be read is
skipped with a warning that names its offset, never its content.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import faust

from detectors import RuleBook
from stream.engine.records import TranscriptLine, decode_lines
from stream.metrics import OBSERVATIONS
from stream.topics import StreamTopics
from zhijian.scoring import rubric_lookup
from zhijian.store.database import Database

log = logging.getLogger(__name__)
BATCH = 500
WITHIN_S = 0.2
T = TypeVar("T")


def encode(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _decode_json(events: list[Any], what: str) -> list[dict[str, Any]]:
    records = []
    for event in events:
        try:
            record = json.loads(event.value)
            if not isinstance(record, dict):
                raise ValueError("not an object")
            records.append(record)
        except (TypeError, ValueError):
            log.warning("skipping an unreadable record on the %s topic at %s:%s", what, event.message.partition,
                        event.message.offset)
    return records


async def _save(save: Callable[[T], int], records: T, what: str) -> int:
    loop = asyncio.get_running_loop()
    delay = 0.5
    while True:
        try:
            started = time.perf_counter()
            saved = await loop.run_in_executor(None, save, records)
            OBSERVATIONS.sql(what, time.perf_counter() - started)
            return saved
        except Exception as exc:
            log.error("saving %s failed (%s); retrying in %.1f s", what, type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


def register(app: faust.App, topics: StreamTopics, store: Database, counters: Any, book: RuleBook) -> None:
    schema_ready = asyncio.Event()
    rubric_for = rubric_lookup(book)

    @app.agent(topics.alerts, name="zhijian.persist")
    async def persist_alerts(stream: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(None, store.upgrade)
        schema_ready.set()
        async for batch in stream.take_events(BATCH, within=WITHIN_S):
            counters.persisted += await _save(store.alerts.save, _decode_json(batch, "alerts"), "alerts")

    @app.agent(topics.conversations, name="zhijian.persist-conversations")
    async def persist_conversations(stream: Any) -> None:
        await schema_ready.wait()
        async for batch in stream.take_events(BATCH, within=WITHIN_S):
            records = _decode_json(batch, "conversations")
            counters.conversations_persisted += await _save(store.conversations.save, records, "conversations")
            # closing summaries: their conversation-level findings and score (idempotent; accepted appeals stay out)
            counters.scored += await _save(lambda r: store.scores.save_scored(r, rubric_for), records, "scores")

    @app.agent(topics.transcript, name="zhijian.persist-transcript")
    async def persist_transcript(stream: Any) -> None:
        await schema_ready.wait()
        async for batch in stream.take_events(50, within=WITHIN_S):
            lines: list[TranscriptLine] = []
            for event in batch:
                try:
                    lines.extend(decode_lines(event.value))
                except (TypeError, ValueError, KeyError, IndexError):
                    log.warning("skipping an unreadable transcript batch at %s:%s", event.message.partition,
                                event.message.offset)
            counters.messages_persisted += await _save(lambda r: store.messages.save_transcript(r, rubric_for), lines,
                                                       "transcript lines")
