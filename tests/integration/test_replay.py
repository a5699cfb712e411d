"""Gap-free alert replay and fan-out on real processes: a 60 s API outage at 100 msg/s, then
every alert reaches the reconnected client (by alert_id, highest revision); two API processes
each push every alert; 200 clients on one process all get it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import Counter

import pytest
import websockets
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kafka.partitioner.default import murmur2

from api.sockets import HEARTBEAT_S
from tests.integration.harness import Proc, Stack, chat_event, http_json, wait_for, ws_url
from zhijian.kafka.broker import free_port
from zhijian.store.database import Database

pytestmark = pytest.mark.broker
RATE = 100  # messages per second
BEFORE_S, OUTAGE_S, AFTER_S = 15.0, 60.0, 15.0


def start_second_api(stack: Stack, label: str) -> tuple[Proc, int]:
    port = free_port()
    api = Proc("api", {**stack.env, "ZHIJIAN_API_PORT": str(port)}, stack.workdir, label)

    def healthy() -> bool:
        api.assert_running()
        return http_json(f"http://127.0.0.1:{port}/healthz")[0] == 200
    wait_for(healthy, 60, f"{label} healthy")
    return api, port


class Wall:
    """A client as protocol.md describes it: remembers the newest cursor, reconnects with it,
    keeps the highest revision per alert_id."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.alerts: dict[str, int] = {}
        self.sockets: list[Counter[tuple[str, int]]] = []  # per socket: (alert_id, revision) → frames received
        self.received_at: dict[tuple[str, int], float] = {}  # when a revision first arrived
        self.closed_at: list[float] = []
        self.frames = 0
        self.cursor: str | None = None
        self.ready = asyncio.Event()
        self.got = asyncio.Event()

    async def follow(self, url: str) -> None:
        self.ready.clear()
        deliveries: Counter[tuple[str, int]] = Counter()
        self.sockets.append(deliveries)
        try:
            async with websockets.connect(url) as socket:
                async for raw in socket:
                    frame = json.loads(raw)
                    kind = frame.get("kind")
                    if kind in ("ready", "heartbeat"):
                        if "cursor" in frame:
                            self.cursor = frame["cursor"]
                        if kind == "ready":
                            self.ready.set()
                    elif kind is None and frame["conversation_id"].startswith(self.tag):
                        self.frames += 1
                        revision = int(frame.get("revision") or 0)
                        deliveries[(frame["alert_id"], revision)] += 1
                        self.received_at.setdefault((frame["alert_id"], revision), time.monotonic())
                        self.alerts[frame["alert_id"]] = max(revision, self.alerts.get(frame["alert_id"], -1))
                        self.got.set()
        except (websockets.ConnectionClosed, OSError):
            pass
        finally:
            self.closed_at.append(time.monotonic())


async def produced_alerts(stack: Stack, tag: str) -> dict[str, int]:
    """The truth: every alert of this test on the alerts topic, highest revision each."""
    settings = stack.settings
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(settings.topics.alerts, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning()
        found: dict[str, int] = {}
        idle = 0
        while idle < 3:
            batches = await consumer.getmany(timeout_ms=700)
            idle = 0 if batches else idle + 1
            for records in batches.values():
                for record in records:
                    alert = json.loads(record.value)
                    if alert.get("conversation_id", "").startswith(tag):
                        revision = int(alert.get("revision") or 0)
                        found[alert["alert_id"]] = max(revision, found.get(alert["alert_id"], -1))
        return found
    finally:
        await consumer.stop()


def test_every_api_process_sees_every_alert(stack: Stack) -> None:
    """Two API processes on one broker (no consumer group): a socket on each gets every alert of
    conversations on every partition — the alerts on the topic, no fewer on either."""
    second, second_port = start_second_api(stack, "api-second")
    tag = f"two-{uuid.uuid4().hex[:6]}-"
    partitions = stack.settings.partitions
    convs: dict[int, list[str]] = {}
    while any(len(convs.get(p, [])) < 2 for p in range(partitions)):  # two conversations on every partition
        conv = f"{tag}{uuid.uuid4().hex[:8]}"
        found = convs.setdefault((murmur2(conv.encode()) & 0x7FFFFFFF) % partitions, [])
        if len(found) < 2:
            found.append(conv)
    try:
        async def scenario() -> tuple[list[dict[str, int]], dict[str, int]]:
            walls = [Wall(tag), Wall(tag)]
            urls = [ws_url(stack.settings.api_port, "/ws/alerts", stack.token),
                    ws_url(second_port, "/ws/alerts", stack.token)]
            tasks = [asyncio.create_task(w.follow(u)) for w, u in zip(walls, urls, strict=True)]
            for wall in walls:
                await asyncio.wait_for(wall.ready.wait(), 20)  # subscribed: nothing can be missed now
            producer = AIOKafkaProducer(bootstrap_servers=stack.settings.bootstrap_servers)
            await producer.start()
            try:
                for conv in (c for cs in convs.values() for c in cs):
                    event = chat_event(f"{conv}-m", conv, "agent", "哦，稍等")
                    await producer.send_and_wait(stack.settings.topics.messages, json.dumps(event).encode(),
                                                 key=conv.encode())
            finally:
                await producer.stop()
            truth: dict[str, int] = {}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # until the topic holds an alert of every conversation and …
                truth = await produced_alerts(stack, tag)
                if len(truth) >= 2 * partitions and all(w.alerts == truth for w in walls):  # … both have them
                    break
                await asyncio.sleep(1)  # polling the topic until the worker has caught up
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)  # sockets closed before the loop ends
            return [w.alerts for w in walls], truth

        (on_first, on_second), truth = asyncio.run(scenario())
        assert len(truth) >= 2 * partitions, truth
        assert on_first == truth, f"first API: {len(set(truth) - set(on_first))} of {len(truth)} missing"
        assert on_second == truth, f"second API: {len(set(truth) - set(on_second))} of {len(truth)} missing"
    finally:
        second.stop()


def test_two_hundred_clients_all_get_the_alert(stack: Stack) -> None:
    conv = f"fan-{uuid.uuid4().hex[:8]}"
    urls = [ws_url(stack.settings.api_port, "/ws/alerts", stack.token) for _ in range(200)]

    async def scenario() -> list[dict[str, int]]:
        walls = [Wall(conv) for _ in urls]
        tasks = [asyncio.create_task(w.follow(u)) for w, u in zip(walls, urls, strict=True)]
        try:
            await asyncio.wait_for(asyncio.gather(*(w.ready.wait() for w in walls)), 60)
            producer = AIOKafkaProducer(bootstrap_servers=stack.settings.bootstrap_servers)
            await producer.start()
            try:
                event = chat_event(f"{conv}-m", conv, "agent", "哦，稍等")
                await producer.send_and_wait(stack.settings.topics.messages, json.dumps(event).encode(),
                                             key=conv.encode())
            finally:
                await producer.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(w.got.wait() for w in walls)), 60)
            return [w.alerts for w in walls]
        finally:  # also on a failure: every client closes its socket before the loop ends
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    received = asyncio.run(scenario())
    assert all(r and r == received[0] for r in received), sum(1 for r in received if not r)


def test_the_replay_has_no_cap_and_reports_progress(stack: Stack) -> None:
    """1,200 stored changes after the cursor: all replayed (pages of 500), progress cursors between
    pages, then ready; the REST change feed pages through the same set."""
    store = Database(stack.env["DATABASE_URL"])
    try:
        start = store.alerts.last_change()
        conv = f"bulk-{uuid.uuid4().hex[:6]}"
        store.alerts.save([{"alert_id": f"{conv}-{n:04}", "rule": "banned_word", "severity": "critical",
                            "fatal": True, "conversation_id": conv, "shop_id": "s", "agent_id": "a", "team_id": "t",
                            "message_id": f"{conv}-m{n}", "ts_ms": 1_700_000_000_000 + n, "ts": "x",
                            "detected_at": "x", "excerpt": "哦", "span": [0, 1], "detail": {}, "revision": 0}
                           for n in range(1200)])
    finally:
        store.dispose()

    async def replay() -> tuple[list[str], list[int], int]:
        url = await asyncio.to_thread(ws_url, stack.settings.api_port, "/ws/alerts", stack.token, after=str(start))
        ids: list[str] = []
        progress: list[int] = []
        async with websockets.connect(url) as socket:
            while True:
                frame = json.loads(await asyncio.wait_for(socket.recv(), 30))
                if frame.get("kind") == "ready":
                    return ids, progress, int(frame["cursor"])
                if frame.get("kind") == "heartbeat":
                    progress.append(int(frame["cursor"]))
                elif "kind" not in frame and frame["conversation_id"] == conv:
                    ids.append(frame["alert_id"])

    ids, progress, ready = asyncio.run(replay())
    assert ids == [f"{conv}-{n:04}" for n in range(1200)]
    assert len(progress) >= 2 and progress == sorted(progress) and start < progress[0] < ready
    pages: list[str] = []
    cursor = str(start)
    while True:
        status, body = http_json(f"{stack.api_url}/api/alerts?after={cursor}&limit=1000", stack.token)
        assert status == 200, body
        pages += [a["alert_id"] for a in body["alerts"] if a["conversation_id"] == conv]
        if not body["alerts"]:
            break
        cursor = body["cursor"]
    assert pages == ids


def test_a_client_misses_nothing_across_a_60_s_api_outage(stack: Stack) -> None:
    """Runs last in this module: it replaces the stack's API process."""
    tag = f"rp{uuid.uuid4().hex[:6]}-"
    wall = Wall(tag)
    port = stack.settings.api_port

    async def produce(producer: AIOKafkaProducer, seconds: float, start_index: int) -> int:
        start = time.perf_counter()
        total = int(seconds * RATE)
        for i in range(start_index, start_index + total):
            delay = start + (i - start_index) / RATE - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if i % 20 == 0:  # a violation in a conversation of its own: two alerts
                event = chat_event(f"{tag}v{i}", f"{tag}v{i}", "agent", "哦，这个不知道", agent=f"a{i % 7}")
            else:
                conv = f"{tag}n{i % 300}"
                event = chat_event(f"{tag}m{i}", conv, "agent", "您好，马上为您处理", agent=f"a{i % 7}")
            await producer.send(stack.settings.topics.messages, json.dumps(event, ensure_ascii=False).encode(),
                                key=event["conversation_id"].encode())
        return start_index + total

    async def customer(producer: AIOKafkaProducer, conv: str, sender: str, text: str) -> None:
        event = chat_event(f"{conv}-{sender}", conv, sender, text, agent="a1")
        await producer.send_and_wait(stack.settings.topics.messages, json.dumps(event, ensure_ascii=False).encode(),
                                     key=conv.encode())

    async def scenario() -> tuple[dict[str, int], int]:
        first = asyncio.create_task(wall.follow(ws_url(port, "/ws/alerts", stack.token)))
        await asyncio.wait_for(wall.ready.wait(), 20)
        producer = AIOKafkaProducer(bootstrap_servers=stack.settings.bootstrap_servers, linger_ms=5)
        await producer.start()
        waiting = [f"{tag}w{n}" for n in range(5)]  # waiting customers: warning, critical, cleared revisions
        try:
            for conv in waiting:
                await customer(producer, conv, "customer", "在吗？我的订单怎么还没发货")
            index = await produce(producer, BEFORE_S, 0)
            await asyncio.to_thread(stack.api.stop, 9)  # the API dies; alerts keep coming
            await asyncio.wait_for(first, 10)
            index = await produce(producer, OUTAGE_S, index)
            restarted.append(await asyncio.to_thread(Proc, "api", stack.env, stack.workdir, "api-restarted"))
            await asyncio.to_thread(wait_for, lambda: http_json(f"http://127.0.0.1:{port}/healthz")[0] == 200, 60,
                                    "the restarted API")
            assert wall.cursor is not None
            url = await asyncio.to_thread(ws_url, port, "/ws/alerts", stack.token, after=wall.cursor)
            second = asyncio.create_task(wall.follow(url))
            await asyncio.wait_for(wall.ready.wait(), 60)
            for conv in waiting:
                await customer(producer, conv, "agent", "您好，已经为您催促仓库发货")
            await produce(producer, AFTER_S, index)
            await producer.flush()
        finally:
            await producer.stop()
        truth: dict[str, int] = {}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            truth = await produced_alerts(stack, tag)
            if truth and wall.alerts == truth:
                break
            await asyncio.sleep(2)  # polling the topic until the worker has caught up
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)
        return truth, wall.frames

    restarted: list[Proc] = []
    try:
        truth, frames = asyncio.run(scenario())
    finally:
        for api in restarted:  # the module's stack is done with after this test (it runs last)
            api.stop()
    missing = sorted(set(truth) - set(wall.alerts))
    stale = sorted(a for a in truth if a in wall.alerts and wall.alerts[a] < truth[a])
    assert len(truth) >= (BEFORE_S + OUTAGE_S + AFTER_S) * RATE / 20, len(truth)
    assert any(revision >= 2 for revision in truth.values()), "no waiting alert went through its revisions"
    assert not missing and not stale, f"{len(missing)} missing, {len(stale)} stale of {len(truth)} ({frames} frames)"
    assert wall.alerts == truth
    for deliveries in wall.sockets:  # one socket never sends a revision twice (replay and live overlap)
        repeated = sorted(key for key, count in deliveries.items() if count > 1)
        assert not repeated, f"{len(repeated)} alert revisions sent twice on one socket: {repeated[:5]}"
    # across the reconnect only what came after the last cursor comes again: revisions the first socket got in
    # its last heartbeats (not yet stored when its last cursor was computed), which the client drops as known
    again = set(wall.sockets[0]) & set(wall.sockets[1])
    late = [key for key in again if wall.received_at[key] < wall.closed_at[0] - 3 * HEARTBEAT_S]
    assert not late, f"{len(late)} of {len(again)} repeated revisions were older than the last cursors: {late[:5]}"
