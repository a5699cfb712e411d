"""Compatibility shim: verified end offsets for brokers whose ListOffsets is short.

Tansu answers ListOffsets(latest) with "first offset of the last record batch + 1"
instead of the log end offset. Faust reads table changelogs up to that answer
during recovery, so after a restart it silently stops short and the table misses
the tail of the changelog. The high watermark in a *fetch* response is right on
Tansu, so we check each listed end offset by fetching the record just before it
and reading the partition's high watermark from that response.

On a broker that answers correctly (Apache Kafka, Redpanda) the high watermark
equals the listed offset, and ``correct_end_offsets`` returns the listed values
unchanged: the shim changes nothing there; it costs one small fetch per changelog
partition at recovery.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka

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


class VerifiedEndOffsetsConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, with table-recovery end offsets checked by a fetch, and a short fetch
    wait: Faust asks the broker to hold an empty fetch for 1.5 s, and Tansu answers only when that wait
    is over even if records arrive meanwhile (measured: p50 358 ms at 1,500 ms, 3 ms at 20 ms). Apache
    Kafka answers as soon as a record arrives, so a short wait costs it only idle polls."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = getattr(self.app, "fetch_max_wait_ms", 1500)  # aiokafka 0.14: read at start
        return consumer

    async def _highwaters(self, partitions: list[Any]) -> Mapping[Any, int]:
        listed = await super()._highwaters(partitions)
        settings = getattr(self.app, "zhijian", None)
        if self.consumer.in_transaction or (settings is not None and settings.end_offset_shim == "off"):
            return listed
        transport: Any = self.transport
        servers = faust_aiokafka.server_list(transport.url, transport.default_port)
        corrected = await verified_end_offsets(servers, dict(listed))
        return {tp: end for tp, end in corrected.items() if end is not None}


class VerifiedEndOffsetsConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return VerifiedEndOffsetsConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def perform_seek(self) -> None:
        """Seek every partition to its committed offset, and a partition that has none to its beginning.

        Faust (through aiokafka's seek_to_committed) seeks only partitions that have a committed offset. A
        worker that took over a partition without one after a rebalance (its owner was killed before its
        first commit) read nothing from it (tests/integration/test_many_workers.py, about half the runs).
        Reading it from the start is what ``consumer_auto_offset_reset="earliest"`` promises; events already
        in the recovered table are recognised as duplicates."""
        await super().perform_seek()
        fresh = [tp for tp in self.assignment()
                 if not tp.topic.endswith("-changelog") and self._committed_offset.get(tp) is None]
        if fresh:
            log.info("no committed offset for %s: reading from the beginning", sorted(fresh))
            await self._thread.seek_to_beginning(*(TopicPartition(tp.topic, tp.partition) for tp in fresh))

    async def _handle_attached(self, commit_offsets: Mapping[Any, int]) -> None:
        # Runs right before Faust commits ``commit_offsets``: the app's checkpoint writes outputs and then
        # the tables' changelogs (stream.writeback), so a committed offset never runs ahead of either.
        checkpoint = getattr(self.app, "checkpoint", None)
        if checkpoint is not None:
            await checkpoint()
        await super()._handle_attached(commit_offsets)


class VerifiedEndOffsetsTransport(faust_aiokafka.Transport):
    Consumer = VerifiedEndOffsetsConsumer
