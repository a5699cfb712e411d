"""Tables are exact after a worker restart mid-stream.

The worker is stopped after a first phase of traffic; a second phase (new messages and
re-sent duplicates of the first) is produced while it is down; a new worker recovers
the tables from their changelogs and processes the rest. The per-agent tally and the
conversation table must then equal what the test computes on its own.

Without the end-offset shim (ZHIJIAN_END_OFFSET_SHIM=off) this test fails on Tansu: the
recovered tables stop at the start of each changelog partition's last batch, so agent
counts come out short and some duplicates are counted again.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from tests.integration.conftest import prepare
from tests.integration.harness import chat_event, http_json, start_worker, wait_for
from zhijian.kafka.broker import EmbeddedBroker

pytestmark = pytest.mark.broker

AGENTS = [f"agent-{n}" for n in range(5)]
CONVERSATIONS = 40
T0 = 1_795_400_000_000


def conversation_events(conv: int, turns: range) -> list[dict[str, Any]]:
    agent = AGENTS[conv % len(AGENTS)]
    events = []
    for turn in turns:
        ts = T0 + conv * 100_000 + turn * 4000
        events.append(chat_event(f"c{conv}-q{turn}", f"conv-{conv}", "customer", "请问发货了吗", agent=agent, ts_ms=ts))
        text = "哦，好的" if (conv + turn) % 3 == 0 else "您好，马上为您处理"
        events.append(chat_event(f"c{conv}-r{turn}", f"conv-{conv}", "agent", text, agent=agent, ts_ms=ts + 2000))
    return events


def expected_tally(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    seen: set[str] = set()
    messages: Counter[str] = Counter()
    alerts: Counter[str] = Counter()
    first: dict[str, str] = {}
    for event in events:
        if event["message_id"] in seen:
            continue
        seen.add(event["message_id"])
        if event["sender"] != "agent":
            continue
        messages[event["agent_id"]] += 1
        alerts[event["agent_id"]] += event["text"].startswith("哦")
        first.setdefault(event["conversation_id"], event["agent_id"])
    firsts = Counter(first.values())
    return {
        agent: {"messages": messages[agent], "findings": alerts[agent], "first_responses": firsts[agent],
                "first_response_mean_s": 2.0}
        for agent in AGENTS
    }


async def produce(bootstrap: str, topic: str, events: list[dict[str, Any]], batches: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    await producer.start()
    try:
        size = max(1, len(events) // batches)
        for start in range(0, len(events), size):
            futures = [
                await producer.send(topic, json.dumps(e, ensure_ascii=False).encode(),
                                    key=e["conversation_id"].encode())
                for e in events[start:start + size]
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


def tally_of(url: str) -> dict[str, dict[str, Any]]:
    status, body = http_json(url)
    assert status == 200
    return {agent: {k: v[k] for k in ("messages", "findings", "first_responses", "first_response_mean_s")}
            for agent, v in body["agents"].items()}


def test_tables_are_exact_after_a_restart_mid_stream(broker: EmbeddedBroker, tmp_path: Path) -> None:
    env, settings = prepare(broker, tmp_path, "recovery")
    # A long linger makes each changelog partition end in a batch of several records:
    # exactly where Tansu's short "latest offset" answer cuts recovery short.
    env["ZHIJIAN_PRODUCER_LINGER_MS"] = "300"
    tally_url = f"http://127.0.0.1:{settings.worker_port}/zhijian/tally/"
    conv_url = f"http://127.0.0.1:{settings.worker_port}/zhijian/conversations/"
    phase1 = [e for c in range(CONVERSATIONS) for e in conversation_events(c, range(4))]
    phase2 = [e for c in range(CONVERSATIONS) for e in conversation_events(c, range(4, 6))]
    phase2 += phase1[::13]  # re-sent duplicates: must not count again

    worker = start_worker(env, tmp_path, "worker-1")
    try:
        asyncio.run(produce(broker.bootstrap_servers, settings.topics.messages, phase1, batches=8))
        expected1 = expected_tally(phase1)
        wait_for(lambda: tally_of(tally_url) == expected1, 60, "phase 1 tally")
    finally:
        assert worker.stop() == 0, worker.log()

    asyncio.run(produce(broker.bootstrap_servers, settings.topics.messages, phase2, batches=4))
    worker = start_worker(env, tmp_path, "worker-2")
    try:
        expected = expected_tally(phase1 + phase2)
        try:
            wait_for(lambda: tally_of(tally_url) == expected, 60, "tally after restart")
        except AssertionError:
            raise AssertionError(f"tally {tally_of(tally_url)} != expected {expected}") from None
        status, body = http_json(conv_url)
        assert status == 200
        assert {cid: sum(c["metrics"]["messages"].values()) for cid, c in body["conversations"].items()} == {
            f"conv-{c}": 12 for c in range(CONVERSATIONS)
        }
        assert all(c["metrics"]["first_response_s"] == 2.0 for c in body["conversations"].values())
        assert all(c["metrics"]["response_times_s"] == [2.0] * 6 for c in body["conversations"].values())
    finally:
        worker.stop()
