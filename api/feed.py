"""Fan-out of ``chat.alerts`` (and ``chat.conversations``) to WebSocket clients.

Every API process reads every partition of the alerts topic with its own consumer
(no consumer group), starting at the end, so several API processes can run side by
side and each sees every alert. A slow client is disconnected rather than allowed
to grow memory: its page reconnects and reloads recent alerts over REST.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from zhijian.kafka.offsets import verified_end_offsets

log = logging.getLogger(__name__)
SUBSCRIBER_QUEUE = 1000


class Hub:
    """In-process publish/subscribe of raw alert JSON strings."""

    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[str | None]] = set()

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
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait(None)


class TopicFeed:
    """Every partition of one topic, from its end, published to a hub (alerts, conversations)."""

    def __init__(self, bootstrap_servers: str, topic: str, hub: Hub,
                 transform: Callable[[str], str] | None = None) -> None:
        self.transform = transform
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.hub = hub
        self.connected = False
        self.delivered = 0
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"feed-{self.topic}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

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
            except (KafkaError, OSError, RuntimeError) as exc:
                log.warning("alert feed lost the broker (%s); retrying in %.1f s", exc, delay)
            finally:
                self.connected = False
                consumer, self._consumer = self._consumer, None
                if consumer is not None:
                    with contextlib.suppress(Exception):
                        await consumer.stop()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False, fetch_max_wait_ms=100
        )
        self._consumer = consumer
        await consumer.start()
        partitions = None
        for _ in range(50):
            await consumer.topics()
            partitions = consumer.partitions_for_topic(self.topic)
            if partitions:
                break
            await asyncio.sleep(0.2)
        if not partitions:
            raise RuntimeError(f"topic {self.topic} does not exist")
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        ends = await verified_end_offsets(self.bootstrap_servers, await consumer.end_offsets(tps))
        for tp in tps:
            consumer.seek(tp, ends[tp] or 0)
        self.connected = True
        log.info("alert feed reading %s from %s", self.topic, ends)
        while True:
            batches: dict[Any, Any] = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    try:
                        payload = record.value.decode("utf-8")
                    except (AttributeError, UnicodeDecodeError):
                        continue
                    if self.transform is not None:
                        try:
                            payload = self.transform(payload)
                        except ValueError:
                            continue
                    self.hub.publish(payload)
                    self.delivered += 1
