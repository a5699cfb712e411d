"""The API's live feed survives a broker restart: /healthz reports the dead feed (503, with
the reason), heartbeats say feed "down", and alerts flow to the same open socket again once
the broker is back (the embedded broker comes back empty: the feed reads the new log from
its start)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import websockets
from aiokafka import AIOKafkaProducer

from tests.integration.harness import Proc, http_json, prepare, wait_for, ws_url
from zhijian.kafka.broker import EmbeddedBroker, ensure_topics, free_port

pytestmark = pytest.mark.broker


def fake_alert(conv: str, n: int) -> dict[str, Any]:
    return {"alert_id": f"{conv}-{n}", "rule": "banned_word", "severity": "critical", "fatal": True,
            "conversation_id": conv, "shop_id": "s", "agent_id": "a", "team_id": "t", "message_id": f"m{n}",
            "excerpt": "哦", "span": [0, 1], "ts": "x", "ts_ms": int(time.time() * 1000), "detected_at": "x",
            "detail": {}, "revision": 0}


async def produce(bootstrap: str, topic: str, alert: dict[str, Any]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, json.dumps(alert).encode(), key=alert["alert_id"].encode())
    finally:
        await producer.stop()


def test_the_feed_reconnects_after_a_broker_restart(tmp_path: Path) -> None:
    broker = EmbeddedBroker("127.0.0.1", free_port(), log_path=tmp_path / "tansu.log")
    broker.start()
    env, settings = prepare(broker, tmp_path, "feed")
    api = Proc("api", env, tmp_path)  # no worker: /healthz is 503 for it, the feed is what we watch
    health = f"http://127.0.0.1:{settings.api_port}/healthz"

    def feed() -> str:
        api.assert_running()
        return str(http_json(health)[1]["components"]["feed"])

    conv = f"fr-{uuid.uuid4().hex[:6]}"
    try:
        wait_for(lambda: feed() == "ok", 60, "the feed connected")

        async def scenario() -> tuple[list[str], list[str]]:
            alerts: list[str] = []
            feed_states: list[str] = []
            got = [asyncio.Event(), asyncio.Event()]
            ready, down, back = asyncio.Event(), asyncio.Event(), asyncio.Event()
            url = await asyncio.to_thread(ws_url, settings.api_port, "/ws/alerts", settings.admin_token)

            async def follow() -> None:
                async with websockets.connect(url) as socket:
                    async for raw in socket:
                        frame = json.loads(raw)
                        if frame.get("kind") == "ready":
                            ready.set()
                        elif frame.get("kind") == "heartbeat":
                            feed_states.append(frame["feed"])
                            if frame["feed"] == "down":
                                down.set()
                            elif down.is_set():
                                back.set()
                        elif "kind" not in frame and frame["conversation_id"] == conv:
                            alerts.append(frame["alert_id"])
                            got[len(alerts) - 1].set()

            follower = asyncio.create_task(follow())
            await asyncio.wait_for(ready.wait(), 20)
            await produce(broker.bootstrap_servers, settings.topics.alerts, fake_alert(conv, 1))
            await asyncio.wait_for(got[0].wait(), 20)
            await asyncio.to_thread(broker.stop)
            await asyncio.to_thread(wait_for, lambda: feed() != "ok", 30, "the dead feed reported")
            status, body = await asyncio.to_thread(http_json, health)
            assert status == 503 and body["components"]["feed"] != "ok", body
            await asyncio.wait_for(down.wait(), 15)  # the open socket is told too
            await asyncio.to_thread(broker.start)
            await ensure_topics(broker.bootstrap_servers, settings.topics.all(), partitions=settings.partitions,
                                compacted=settings.topics.compacted())
            await asyncio.to_thread(wait_for, lambda: feed() == "ok", 60, "the feed back")
            await produce(broker.bootstrap_servers, settings.topics.alerts, fake_alert(conv, 2))
            await asyncio.wait_for(got[1].wait(), 30)
            await asyncio.wait_for(back.wait(), 15)  # and the heartbeats say so again
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
            return alerts, feed_states

        alerts, feed_states = asyncio.run(scenario())
        assert alerts == [f"{conv}-1", f"{conv}-2"]
        assert "down" in feed_states and feed_states[-1] == "ok"
    finally:
        api.stop()
        broker.stop()


def test_the_feed_reads_a_recreated_log_from_its_start_even_once_it_outgrew_the_old_position(tmp_path: Path) -> None:
    """The broker came back empty and producers wrote more to the new log than the feed had read from the old one
    before the feed reconnected: it must not continue at its old position (skipping the new log's first records)."""
    from api.feed import Hub, TopicFeed

    broker = EmbeddedBroker("127.0.0.1", free_port(), log_path=tmp_path / "tansu.log")
    broker.start()
    topic = f"feed-{uuid.uuid4().hex[:6]}.alerts"

    async def scenario() -> list[str]:
        await ensure_topics(broker.bootstrap_servers, [topic], partitions=1)
        hub = Hub()
        queue = hub.subscribe()
        feed = TopicFeed(broker.bootstrap_servers, topic, hub, backfill=0)
        feed.start()

        async def delivered(n: int) -> list[str]:
            return [json.loads(str(await asyncio.wait_for(queue.get(), 30)))["alert_id"] for _ in range(n)]

        try:
            await asyncio.to_thread(wait_for, lambda: feed.connected, 30, "the feed connected")
            for n in (1, 2):
                await produce(broker.bootstrap_servers, topic, fake_alert("old", n))
            assert await delivered(2) == ["old-1", "old-2"]
            await feed.stop()  # away while the broker restarts (its position: 2)
            await asyncio.to_thread(broker.stop)
            await asyncio.to_thread(broker.start)
            await ensure_topics(broker.bootstrap_servers, [topic], partitions=1)
            for n in (1, 2, 3):  # the new log grows past the old position before the feed is back
                await produce(broker.bootstrap_servers, topic, fake_alert("new", n))
            feed.start()
            return await delivered(3)
        finally:
            await feed.stop()

    try:
        assert asyncio.run(scenario()) == ["new-1", "new-2", "new-3"]
    finally:
        broker.stop()
