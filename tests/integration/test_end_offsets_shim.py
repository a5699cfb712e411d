"""Tansu's ListOffsets(latest) is short; the shim's fetch-based check corrects it."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from zhijian.kafka.broker import EmbeddedBroker, ensure_topics
from zhijian.kafka.offsets import verified_end_offsets

pytestmark = pytest.mark.broker


async def test_listed_end_offsets_are_short_on_tansu_and_the_shim_corrects_them(broker: EmbeddedBroker) -> None:
    topic = "shim-check"
    await ensure_topics(broker.bootstrap_servers, [topic], partitions=3)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=20)
    await producer.start()
    try:
        for _batch in range(3):  # three record batches of five on partition 0
            futures = [await producer.send(topic, b"x", partition=0) for _ in range(5)]
            for future in futures:
                await future
        await producer.send_and_wait(topic, b"y", partition=1)
    finally:
        await producer.stop()

    tps = [TopicPartition(topic, p) for p in range(3)]
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap_servers)
    await consumer.start()
    try:
        listed = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    # The gap the shim exists for: the broker lists "start of last batch + 1".
    assert listed[tps[0]] < 15
    corrected = await verified_end_offsets(broker.bootstrap_servers, listed)
    assert corrected == {tps[0]: 15, tps[1]: 1, tps[2]: 0}
