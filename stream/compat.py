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

import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka

from zhijian.kafka.offsets import verified_end_offsets

log = logging.getLogger(__name__)


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


def group_membership(app: Any) -> tuple[int, str | None]:
    """(generation, member id) of this worker's consumer-group membership, from aiokafka's coordinator (Faust
    keeps only the generation, ``app.consumer_generation_id``). (-1, None) if the consumer is not there."""
    try:
        coordinator = app.consumer._thread._ensure_consumer()._coordinator
        return int(coordinator.generation), coordinator.member_id
    except (AttributeError, TypeError, ValueError):
        generation = getattr(app, "consumer_generation_id", None)
        return (int(generation) if generation is not None else -1), None


def group_was_reset(before: tuple[int, str | None] | None, now: tuple[int, str | None]) -> bool:
    """Whether the group coordinator forgot the group between two assignments: a new join always gets a higher
    generation, so a generation that went back, or the same one for a new member id, means the broker lost the
    group (the embedded broker keeps nothing across a restart: offsets, changelogs and logs are gone too)."""
    if before is None or before[0] < 0 or now[0] < 0:
        return False
    if now[0] < before[0]:
        return True
    return now[0] == before[0] and None not in (before[1], now[1]) and before[1] != now[1]
