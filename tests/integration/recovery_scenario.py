"""The recovery scenario shared by the restart tests: 40 conversations of five agents, each turn a customer's
question answered in 2 s (every third answer starting with the banned particle 哦), and the tally the events alone
give (each message once, whatever was re-sent)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

from aiokafka import AIOKafkaProducer

from tests.integration.harness import chat_event, http_json, wait_for

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


def expect_tally(url: str, expected: dict[str, dict[str, Any]], timeout_s: float, what: str) -> None:
    """Wait until the worker's tally equals ``expected``; on timeout say what it was."""
    try:
        wait_for(lambda: tally_of(url) == expected, timeout_s, what)
    except AssertionError:
        raise AssertionError(f"tally {tally_of(url)} != expected {expected}") from None
