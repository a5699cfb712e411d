"""Agents that write the durable record to SQL in batches: alerts, conversation snapshots,
and for closed conversations their findings and scores.

Both writes are idempotent (alert_id with revision, conversation_id with version), so a
replay after a crash leaves the same rows. If the database is down the agent holds the
stream and retries: back-pressure, nothing dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

import faust

from detectors import RuleBook
from stream.topics import StreamTopics
from zhijian.quality_store import QualityStore
from zhijian.scoring import rubric_lookup

log = logging.getLogger(__name__)
BATCH = 500
WITHIN_S = 0.2


def _decode(batch: Iterable[Any], what: str) -> list[dict[str, Any]]:
    records = []
    for value in batch:
        try:
            records.append(json.loads(value))
        except (TypeError, ValueError):
            log.warning("skipping an unreadable record on the %s topic: %.80r", what, value)
    return records


async def _save(save: Callable[[list[dict[str, Any]]], int], records: list[dict[str, Any]], what: str) -> int:
    loop = asyncio.get_running_loop()
    delay = 0.5
    while True:
        try:
            return await loop.run_in_executor(None, save, records)
        except Exception:
            log.exception("saving %d %s failed; retrying in %.1f s", len(records), what, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


def register(app: faust.App, topics: StreamTopics, store: QualityStore, counters: Any, book: RuleBook) -> None:
    schema_ready = asyncio.Event()
    rubric_for = rubric_lookup(book)

    @app.agent(topics.alerts, name="zhijian.persist")
    async def persist_alerts(stream: faust.StreamT[Any]) -> None:
        await asyncio.get_running_loop().run_in_executor(None, store.create_schema)
        schema_ready.set()
        async for batch in stream.take(BATCH, within=WITHIN_S):
            counters.persisted += await _save(store.save_alerts, _decode(batch, "alerts"), "alerts")

    @app.agent(topics.conversations, name="zhijian.persist-conversations")
    async def persist_conversations(stream: faust.StreamT[Any]) -> None:
        await schema_ready.wait()
        async for batch in stream.take(BATCH, within=WITHIN_S):
            records = _decode(batch, "conversations")
            counters.conversations_persisted += await _save(store.save_conversations, records, "conversations")
            # closing summaries: their findings and score (idempotent; accepted appeals stay out)
            counters.scored += await _save(lambda r: store.save_scored(r, rubric_for), records, "scores")
