"""Fan-out of ``chat.alerts`` (and ``chat.conversations``) to WebSocket clients.

Every API process reads every partition of the alerts topic with its own consumer
(no consumer group), starting a little before the end, so several API processes can run
side by side and each sees every alert. A slow client is disconnected rather than allowed
to grow memory: its page reconnects and reloads recent alerts over REST.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from zhijian.kafka.offsets import verified_end_offsets

log = logging.getLogger(__name__)
SUBSCRIBER_QUEUE = 1000


class Hub:
    """In-process publish/subscribe of raw alert JSON strings."""

    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[str | None]] = set()
        self.dropped = 0  # subscribers disconnected for being too slow (GET /metrics)

    def subscribe(self) -> asyncio.Queue[str | None]:
        queue: asyncio.Queue[str | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str | None]) -> None:
        self._subscribers.discard(queue)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, payload: str) -> None:
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(payload)
            except asyncio.QueueFull:
                # Too slow: drop this subscriber; None tells its sender to close.
                self._subscribers.discard(queue)
                self.dropped += 1
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait(None)


class TopicFeed:
    """Every partition of one topic published to a hub (alerts, conversations, actions).

    It starts ``backfill`` records before each partition's end and delivers those of the last
    ``backfill_s`` (the alerts feed: the recent alerts a socket's replay needs that may not be in
    SQL yet, the subscribe/persist race), and reconnects after losing the
    broker, continuing where it stopped, or from the start of a log that was recreated (the
    embedded broker keeps nothing across a restart). ``problem`` says why it is down."""

    def __init__(self, bootstrap_servers: str, topic: str, hub: Hub,
                 transform: Callable[[str], str] | None = None, backfill: int = 0, backfill_s: float = 30.0,
                 check_every_s: float = 2.0) -> None:
        self.transform = transform
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.hub = hub
        self.backfill = backfill
        self.backfill_s = backfill_s
        self.check_every_s = check_every_s
        self.connected = False
        self.problem: str | None = "not started"
        self.delivered = 0
        self._positions: dict[TopicPartition, int] = {}
        self._last_seen: dict[TopicPartition, tuple[int, bytes | None]] = {}  # the record before each position
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._stopping: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"feed-{self.topic}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def status(self) -> str:
        """"ok", or why the feed is down."""
        return "ok" if self.connected else (self.problem or "not connected")

    async def check_broker(self, timeout_s: float = 2.0) -> None:
        """Raise unless the broker answers a metadata request."""
        consumer = self._consumer
        if consumer is None or not self.connected:
            raise ConnectionError("alert feed is not connected to the broker")
        await asyncio.wait_for(consumer.topics(), timeout_s)

    async def _run(self) -> None:
        delay = 0.5
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # whatever the client raises, the feed reconnects (and says why it is down)
                self.problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                log.warning("feed of %s lost the broker (%s); retrying in %.1f s", self.topic, self.problem, delay)
            finally:
                if self.connected:
                    delay = 0.5  # it had been reading: reconnect quickly
                self.connected = False
                consumer, self._consumer = self._consumer, None
                if consumer is not None:
                    await self._let_go(consumer)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _let_go(self, consumer: AIOKafkaConsumer) -> None:
        """Stop a consumer, waiting at most 5 s: aiokafka's stop can hang while the broker is away."""
        stopping = asyncio.create_task(consumer.stop())
        self._stopping.add(stopping)
        stopping.add_done_callback(self._stopping.discard)
        stopping.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved: no warning
        await asyncio.wait({stopping}, timeout=5.0)

    def _start_offset(self, tp: TopicPartition, end: int) -> int:
        last = self._positions.get(tp)
        if last is None:
            return max(0, end - self.backfill)
        if last <= end:
            return last  # reconnected: continue exactly where it stopped
        log.warning("%s ends at %d before this feed's position %d: the log was recreated; reading it from the start",
                    tp, end, last)
        self._last_seen.pop(tp, None)
        return 0

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False,
                                    fetch_max_wait_ms=100, auto_offset_reset="earliest")
        self._consumer = consumer
        await asyncio.wait_for(consumer.start(), 10.0)
        partitions = None
        for _ in range(50):
            await asyncio.wait_for(consumer.topics(), 5.0)
            partitions = consumer.partitions_for_topic(self.topic)
            if partitions:
                break
            await asyncio.sleep(0.2)
        if not partitions:
            raise RuntimeError(f"topic {self.topic} does not exist")
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        listed = await asyncio.wait_for(consumer.end_offsets(tps), 10.0)
        ends = await asyncio.wait_for(verified_end_offsets(self.bootstrap_servers, listed), 10.0)
        # on the first start, records older than backfill_s are skipped, not delivered
        oldest_ms = int((time.time() - self.backfill_s) * 1000) if not self._positions else 0
        starts = {tp: self._start_offset(tp, ends[tp] or 0) for tp in tps}
        for tp in await self._recreated(consumer, starts):
            log.warning("%s holds other records than this feed read before it: the log was recreated (a broker that "
                        "kept nothing); reading it from the start", tp)
            starts[tp] = 0
        for tp, start in starts.items():
            consumer.seek(tp, start)
        self.connected = True
        self.problem = None
        log.info("feed reading %s from %s", self.topic, {tp.partition: start for tp, start in starts.items()})
        loop = asyncio.get_running_loop()
        next_check = loop.time() + self.check_every_s
        while True:
            batches: dict[TopicPartition, Any] = await consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    self._positions[tp] = record.offset + 1
                    self._last_seen[tp] = (record.timestamp, record.key)
                    if record.timestamp is None or record.timestamp >= oldest_ms:
                        self._deliver(record.value)
            if loop.time() >= next_check:  # a broker that went away is noticed here, not never
                await asyncio.wait_for(consumer.topics(), 3.0)
                next_check = loop.time() + self.check_every_s

    async def _recreated(self, consumer: AIOKafkaConsumer, starts: dict[TopicPartition, int]) -> set[TopicPartition]:
        """Partitions where the feed would continue after a reconnect but the record before its position is not the
        one it read there: the broker came back empty and the new log has already grown past the old position
        (continuing would skip the new log's first records). Checked by that record's timestamp and key."""
        suspects = {tp: start for tp, start in starts.items()
                    if start > 0 and start == self._positions.get(tp) and self._last_seen.get(tp) is not None}
        if not suspects:
            return set()
        for tp, start in suspects.items():
            consumer.seek(tp, start - 1)
        seen: dict[TopicPartition, tuple[int, bytes | None] | None] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5.0
        while len(seen) < len(suspects) and loop.time() < deadline:
            batches: dict[TopicPartition, Any] = await consumer.getmany(*[tp for tp in suspects if tp not in seen],
                                                                         timeout_ms=200)
            for tp, records in batches.items():
                if records and tp not in seen:
                    first = records[0]
                    seen[tp] = (first.timestamp, first.key) if first.offset == suspects[tp] - 1 else None
        # a record that is not there (retention took it, a marker) tells nothing: continue where the feed stopped
        return {tp for tp, record in seen.items() if record is not None and record != self._last_seen[tp]}

    def _deliver(self, value: bytes | None) -> None:
        try:
            payload = value.decode("utf-8") if value is not None else None
        except UnicodeDecodeError:
            payload = None
        if payload is None:
            return
        if self.transform is not None:
            try:
                payload = self.transform(payload)
            except ValueError:
                return
        self.hub.publish(payload)
        self.delivered += 1
