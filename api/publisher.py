"""One Kafka producer per API process, started on first use, for what the API publishes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiokafka import AIOKafkaProducer


class Publisher:
    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def publish(self, key: str, value: dict[str, Any]) -> None:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers, acks="all")
                await producer.start()
                self._producer = producer
        await self._producer.send_and_wait(
            self.topic, key=key.encode(), value=json.dumps(value, ensure_ascii=False, sort_keys=True).encode())

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
