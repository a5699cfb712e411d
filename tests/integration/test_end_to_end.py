"""Broker, worker and API as real processes; events from independent Kafka clients."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import kafka
import pytest
import websockets
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from stream.agents import expected_partition
from tests.integration.harness import Stack, chat_event, http_json, wait_for, ws_url

pytestmark = pytest.mark.broker


def independent_produce(bootstrap: str, topic: str, key: str, value: dict[str, Any], partition: int) -> None:
    """Produce with kafka-python: a separate client library, not the aiokafka the stack uses.

    (kcat/librdkafka cannot parse this Tansu build's ApiVersions answer, so it is not used.)
    """
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap)
    try:
        producer.send(topic, key=key.encode(), value=json.dumps(value, ensure_ascii=False).encode(),
                      partition=partition).get(timeout=30)
    finally:
        producer.close()


async def receive_alert(url: str, predicate: Any, timeout_s: float = 30.0,
                        ready: asyncio.Event | None = None) -> dict[str, Any]:
    async with websockets.connect(url) as socket:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            alert: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), remaining))
            if alert.get("kind") == "ready" and ready is not None:
                ready.set()
            if "kind" not in alert and predicate(alert):
                return alert


async def produce_after_connect(stack: Stack, conv: str, message_id: str) -> dict[str, Any]:
    url = ws_url(stack.settings.api_port, "/ws/alerts", stack.token)
    subscribed = asyncio.Event()
    waiter = asyncio.create_task(receive_alert(url, lambda a: a["message_id"] == message_id, ready=subscribed))
    await asyncio.wait_for(subscribed.wait(), 10)  # the socket is subscribed before the event is produced
    event = chat_event(message_id, conv, "agent", "哦，这个不知道", agent="agent-7", team="team-a")
    # Deliberately not the key's partition: the worker must re-key it to where the
    # conversation's state lives, and still alert exactly once.
    wrong = (expected_partition(conv.encode(), stack.settings.partitions) + 1) % stack.settings.partitions
    await asyncio.to_thread(independent_produce, stack.settings.bootstrap_servers,
                            stack.settings.topics.messages, conv, event, wrong)
    return await waiter


def test_independent_client_message_becomes_a_websocket_alert_and_is_stored(stack: Stack) -> None:
    conv, message_id = f"conv-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    alert = asyncio.run(produce_after_connect(stack, conv, message_id))
    assert alert["rule"] == "banned_word" and alert["severity"] == "critical"
    assert (alert["conversation_id"], alert["agent_id"], alert["team_id"]) == (conv, "agent-7", "team-a")
    start, end = alert["span"]
    assert alert["excerpt"][start:end] == "哦"
    assert set(alert) >= {"alert_id", "ts", "detected_at", "message_id"}

    def stored_alerts() -> list[tuple[str, str]]:
        status, body = http_json(f"{stack.api_url}/api/alerts?limit=200", stack.token)
        if status != 200:
            return []
        return [(a["rule"], a["alert_id"]) for a in body["alerts"] if a["message_id"] == message_id]

    # the socket's alert is one of two from this message; the API stores them one at a time
    wait_for(lambda: {alert["alert_id"]} < {alert_id for _, alert_id in stored_alerts()}, 20,
             "both alerts in the database")
    mine = stored_alerts()
    # 哦 (banned_word) and 不知道 (forbidden_phrase), each stored exactly once despite the re-keying
    assert sorted(rule for rule, _ in mine) == ["banned_word", "forbidden_phrase"]
    assert len({alert_id for _, alert_id in mine}) == 2
    assert http_json(f"http://127.0.0.1:{stack.settings.worker_port}/zhijian/health/")[1]["counters"]["rekeyed"] >= 1


def test_health_reports_every_component(stack: Stack) -> None:
    status, body = http_json(f"{stack.api_url}/healthz")
    assert status == 200
    assert body == {"ok": True,
                    "components": {"broker": "ok", "worker": "ok", "database": "ok", "feed": "ok"}}


def test_requests_without_a_valid_token_are_refused(stack: Stack) -> None:
    assert http_json(f"{stack.api_url}/api/alerts")[0] == 401
    assert http_json(f"{stack.api_url}/api/alerts", token="wrong")[0] == 401

    async def socket_close_code(url: str) -> int | None:
        async with websockets.connect(url) as socket:
            with pytest.raises(websockets.ConnectionClosed) as info:
                await asyncio.wait_for(socket.recv(), 10)
            return info.value.rcvd.code if info.value.rcvd else None

    base = f"ws://127.0.0.1:{stack.settings.api_port}/ws/alerts"
    assert asyncio.run(socket_close_code(base)) == 1008
    assert asyncio.run(socket_close_code(f"{base}?ticket=wrong")) == 1008
    assert asyncio.run(socket_close_code(f"{base}?token={stack.token}")) == 1008  # no credentials in URLs
    assert http_json(f"{stack.api_url}/api/alerts?token={stack.token}")[0] == 401
    used = ws_url(stack.settings.api_port, "/ws/alerts", stack.token)

    async def use_twice() -> int | None:
        async with websockets.connect(used) as socket:  # the first use is accepted ...
            frame = json.loads(await asyncio.wait_for(socket.recv(), 10))
            assert frame["kind"] == "ready"
        return await socket_close_code(used)  # ... a second is refused
    assert asyncio.run(use_twice()) == 1008


BAD_INPUTS: list[tuple[bytes, str]] = [
    (b'{"message_id": "x", ', "not valid JSON"),
    (b'\xff\xfe\x00garbage', "not valid UTF-8"),
    (json.dumps({"message_id": "bad-1", "conversation_id": "c", "shop_id": "s"}).encode(), "missing field"),
    (json.dumps(chat_event("bad-2", "c", "robot", "hi")).encode(), "unknown sender 'robot'"),
    (json.dumps(chat_event("bad-3", "c", "agent", "hi", etype="typing")).encode(), "unknown type 'typing'"),
    (json.dumps(chat_event("bad-4", "c", "agent", "您" * 10_001)).encode(), "over the limit"),
    (json.dumps(chat_event("bad-5", "c", "agent", "hi", ts_ms=int(time.time() * 1000) + 10 * 86_400_000)).encode(),
     "in the future"),
    (json.dumps({**chat_event("bad-6", "c", "agent", "hi"), "conversation_id": 7}).encode(), "must be a string"),
]


def test_bad_input_goes_to_the_deadletter_topic_and_good_input_still_flows(stack: Stack) -> None:
    settings = stack.settings
    conv = f"conv-{uuid.uuid4().hex[:8]}"
    # one conversation each: repeats within a conversation are throttled to one alert
    good = [chat_event(f"{conv}-{n}", f"{conv}-{n}", "agent", "哦，好的") for n in range(3)]

    async def scenario() -> tuple[list[Any], list[Any]]:
        tps = [TopicPartition(settings.topics.deadletter, p) for p in range(settings.partitions)]
        alert_tps = [TopicPartition(settings.topics.alerts, p) for p in range(settings.partitions)]
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
        await consumer.start()
        consumer.assign(tps + alert_tps)
        await consumer.seek_to_beginning()
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
        await producer.start()
        try:
            for index, (value, _) in enumerate(BAD_INPUTS):  # interleave good and bad
                await producer.send_and_wait(settings.topics.messages, value, key=f"bad-{index}".encode())
                if index < len(good):
                    await producer.send_and_wait(settings.topics.messages, json.dumps(good[index]).encode(),
                                                 key=good[index]["conversation_id"].encode())
            dead: list[Any] = []
            alerts: list[Any] = []
            deadline = asyncio.get_running_loop().time() + 30
            while (len(dead) < len(BAD_INPUTS) or len(alerts) < len(good)) \
                    and asyncio.get_running_loop().time() < deadline:
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    if tp.topic == settings.topics.deadletter:
                        dead += records
                    else:
                        alerts += [r for r in records if json.loads(r.value)["conversation_id"].startswith(conv)]
            return dead, alerts
        finally:
            await producer.stop()
            await consumer.stop()

    dead, alerts = asyncio.run(scenario())
    by_value = {record.value: dict(record.headers) for record in dead}
    for value, reason in BAD_INPUTS:
        assert value in by_value, f"missing from dead letters: {value[:60]!r}"
        headers = by_value[value]
        assert reason in headers["zhijian-reason"].decode(), headers
        assert headers["zhijian-source-topic"].decode() == settings.topics.messages
    assert len(dead) == len(BAD_INPUTS)
    assert sorted(json.loads(r.value)["message_id"] for r in alerts) == sorted(e["message_id"] for e in good)
    status, body = http_json(f"http://127.0.0.1:{settings.worker_port}/zhijian/health/")
    assert status == 200 and body["counters"]["deadlettered"] >= len(BAD_INPUTS)
    stack.worker.assert_running()
