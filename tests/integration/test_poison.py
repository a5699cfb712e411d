"""Poison records on real processes: the worker never crashes on input, every bad record reaches
the dead-letter topic with a reason (truncated, with its size, when too large to store whole), a
monster conversation keeps a small state, and no customer text or token reaches a log."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import kafka
import pytest
from aiokafka.partitioner import murmur2

from tests.integration.harness import Stack, chat_event, http_json, wait_for

pytestmark = pytest.mark.broker
PHONE = "13912345678"


def deadletters(stack: Stack) -> dict[str, dict[str, str]]:
    """Dead letters by the message id prefix we gave them (bytes decoded leniently), with their headers."""
    consumer = kafka.KafkaConsumer(stack.settings.topics.deadletter, bootstrap_servers=stack.settings.bootstrap_servers,
                                   auto_offset_reset="earliest", consumer_timeout_ms=3000,
                                   max_partition_fetch_bytes=2 * 1024 * 1024)
    found: dict[str, dict[str, str]] = {}
    try:
        for record in consumer:
            headers = {k: v.decode(errors="replace") for k, v in record.headers}
            marker = record.value[:200].decode(errors="replace")
            for tag in ("poison-big", "poison-ts", "poison-surrogate-text", "poison-surrogate-conv",
                        "poison-surrogate-id", "poison-json"):
                if tag in marker:
                    found[tag] = {**headers, "size": str(len(record.value))}
    finally:
        consumer.close()
    return found


def produce(stack: Stack, values: list[tuple[bytes, bytes]]) -> None:
    producer = kafka.KafkaProducer(bootstrap_servers=stack.settings.bootstrap_servers,
                                   max_request_size=4 * 1024 * 1024)
    try:
        for key, value in values:
            producer.send(stack.settings.topics.messages, key=key, value=value).get(timeout=30)
    finally:
        producer.close()


def raw_event(tag: str, **changes: Any) -> str:
    event = chat_event(f"{tag}-{uuid.uuid4().hex[:6]}", f"conv-{tag}", "customer", f"我的电话是{PHONE}", agent=None)
    event.update(changes)
    return json.dumps(event, ensure_ascii=True)  # ASCII escapes let us write lone surrogates


def test_poison_records_are_dead_lettered_and_the_worker_keeps_going(stack: Stack) -> None:
    big = raw_event("poison-big", text="长" * 10).replace('"text"', '"padding": "' + "x" * 1_100_000 + '", "text"')
    poison = [
        (b"big", big.encode()),
        (b"ts", raw_event("poison-ts").replace('"ts": ', '"ts": ' + "9" * 5000 + ", \"ts0\": ").encode()),
        (b"st", raw_event("poison-surrogate-text", text=f"电话{PHONE}\ud800").encode()),
        (b"sc", raw_event("poison-surrogate-conv", conversation_id="c\udc00x").encode()),
        (b"si", raw_event("poison-surrogate-id", message_id="poison-surrogate-id\ud83d").encode()),
        (b"js", b'{"message_id": "poison-json", ' + PHONE.encode()),
    ]
    before = http_json(f"http://127.0.0.1:{stack.settings.worker_port}/zhijian/health/")[1]["counters"]
    produce(stack, poison)
    # then a monster conversation: 250 messages of 1,000 characters each, and a normal message after it
    conv = f"monster-{uuid.uuid4().hex[:6]}"
    t0 = int(time.time() * 1000) - 600_000
    monster = [chat_event(f"{conv}-{i}", conv, "agent" if i % 2 else "customer", ("您好" * 500)[:1000],
                          agent="a-monster" if i % 2 else None, ts_ms=t0 + i * 1000) for i in range(250)]
    produce(stack, [(conv.encode(), json.dumps(e, ensure_ascii=False).encode()) for e in monster])
    after_conv, after_id = f"after-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    produce(stack, [(after_conv.encode(), json.dumps(chat_event(after_id, after_conv, "agent", "哦，好的"),
                                                     ensure_ascii=False).encode())])

    def caught_up() -> dict[str, Any] | None:
        counters = http_json(f"http://127.0.0.1:{stack.settings.worker_port}/zhijian/health/")[1]["counters"]
        done = counters["processed"] - before["processed"] >= 251 and \
            counters["deadlettered"] - before["deadlettered"] >= len(poison)
        return counters if done else None

    counters = wait_for(caught_up, 60, "the worker to get through the poison and the monster")
    stack.worker.assert_running()
    assert counters["failed"] == before["failed"]  # nothing reached the catch-all: each had a reason

    found = wait_for(lambda: (lambda d: d if len(d) == len(poison) else None)(deadletters(stack)), 30,
                     "every poison record in the dead-letter topic")
    assert int(found["poison-big"]["zhijian-truncated-from"]) > 1_000_000
    assert int(found["poison-big"]["size"]) <= 512 * 1024
    assert "too long" in found["poison-ts"]["zhijian-reason"]
    for tag in ("poison-surrogate-text", "poison-surrogate-conv", "poison-surrogate-id"):
        assert "surrogate" in found[tag]["zhijian-reason"], found[tag]
    assert "not valid JSON" in found["poison-json"]["zhijian-reason"]
    for headers in found.values():
        assert PHONE not in headers["zhijian-reason"]

    # the monster conversation's state stays small; its transcript is whole in SQL
    partition = (murmur2(conv.encode()) & 0x7FFFFFFF) % stack.settings.partitions
    live = http_json(f"http://127.0.0.1:{stack.settings.worker_port}/zhijian/conversations/{conv}/")[1]
    assert live["metrics"]["messages"] == {"customer": 125, "agent": 125, "bot": 0} and partition >= 0

    def transcript_stored() -> bool:
        status, body = http_json(f"{stack.api_url}/api/conversations/{conv}", stack.token)
        return status == 200 and len(body["transcript"]) == 250

    wait_for(transcript_stored, 30, "the monster's transcript in SQL")
    wait_for(lambda: any(a["message_id"] == after_id for a in http_json(
        f"{stack.api_url}/api/alerts?limit=100", stack.token)[1]["alerts"]), 30, "the next alert")

    # the worker's own pages (no sign-in; bound to 127.0.0.1) carry no customer text, even of a waiting customer
    waiting = f"waiting-{uuid.uuid4().hex[:6]}"
    asked = f"我的电话{PHONE}，快点发货"
    produce(stack, [(waiting.encode(), json.dumps(chat_event(uuid.uuid4().hex, waiting, "customer", asked),
                                                  ensure_ascii=False).encode())])
    worker = f"http://127.0.0.1:{stack.settings.worker_port}"

    def waiting_live() -> dict[str, Any] | None:
        status, body = http_json(f"{worker}/zhijian/conversations/{waiting}/")
        return body if status == 200 and body.get("waiting_since_ms") else None

    wait_for(waiting_live, 30, "the waiting customer in the worker's live state")
    for path in ("/zhijian/conversations/", f"/zhijian/conversations/{waiting}/", "/zhijian/tally/",
                 "/zhijian/health/"):
        status, body = http_json(worker + path)
        page = json.dumps(body, ensure_ascii=False)
        assert status == 200 and (waiting in page or "conversations" not in path), path  # the pages do show it
        assert PHONE not in page and "快点发货" not in page, f"{path} shows customer text"

    # no customer text, phone number or token in any log
    for log in (stack.worker.log_path, stack.api.log_path):
        text = log.read_text(errors="replace")
        assert PHONE not in text, f"{log.name} holds a customer's phone number"
        assert "快点发货" not in text and "您好您好" not in text, f"{log.name} holds message text"
        assert stack.token not in text, f"{log.name} holds the admin token"
