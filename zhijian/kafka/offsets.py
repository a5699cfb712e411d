"""End offsets that can be trusted on brokers whose ListOffsets answer is short (Tansu).

Tansu answers ListOffsets(latest) with "first offset of the last record batch + 1" instead of the log
end offset. A fetch's high watermark is right, so each listed end offset is checked by fetching the
record just before it. On Apache Kafka both agree and the listed values come back unchanged. Used by the
worker's table recovery (stream.compat) and by the API's feeds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

log = logging.getLogger(__name__)


def correct_end_offsets(
    listed: Mapping[TopicPartition, int | None], observed: Mapping[TopicPartition, int]
) -> dict[TopicPartition, int | None]:
    """The larger of what ListOffsets said and what a fetch showed, per partition."""
    corrected: dict[TopicPartition, int | None] = {}
    for tp, end in listed.items():
        seen = observed.get(tp)
        if end is None or seen is None:
            corrected[tp] = end
        else:
            corrected[tp] = max(end, seen)
    return corrected


async def observed_end_offsets(
    bootstrap_servers: str | list[str],
    listed: Mapping[TopicPartition, int | None],
    *,
    timeout_s: float = 10.0,
    **client_options: Any,
) -> dict[TopicPartition, int]:
    """Fetch at ``listed - 1`` for each non-empty partition; return the high watermarks seen."""
    to_check = {tp: end for tp, end in listed.items() if end is not None and end > 0}
    if not to_check:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
        max_partition_fetch_bytes=64 * 1024,
        **client_options,
    )
    await consumer.start()
    observed: dict[TopicPartition, int] = {}
    try:
        consumer.assign(list(to_check))
        for tp, end in to_check.items():
            consumer.seek(tp, end - 1)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        pending = set(to_check)
        while pending and loop.time() < deadline:
            batches = await consumer.getmany(*pending, timeout_ms=200)
            for tp, records in batches.items():
                highwater = consumer.highwater(tp)
                last = records[-1].offset + 1 if records else 0
                observed[tp] = max(highwater or 0, last)
                pending.discard(tp)
        if pending:
            log.warning("end-offset check timed out for %s; using listed offsets", sorted(pending))
    finally:
        await consumer.stop()
    return observed


async def verified_end_offsets(
    bootstrap_servers: str | list[str],
    listed: Mapping[TopicPartition, int | None],
    **client_options: Any,
) -> dict[TopicPartition, int | None]:
    observed = await observed_end_offsets(bootstrap_servers, listed, **client_options)
    corrected = correct_end_offsets(listed, observed)
    for tp, end in corrected.items():
        if end != listed[tp]:
            log.info("end offset of %s corrected from %s to %s", tp, listed[tp], end)
    return corrected
