"""Field mappings and body splitting of POST /api/events (pure parts)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from aiokafka.errors import KafkaError

from api.ingest import Ingest, IngestLimits, split_body
from tests.factories import sync_msg_body
from zhijian.core.contract import parse_event
from zhijian.core.ingest_mapping import MappingError, Skipped, apply_mapping, check_mapping, items_of
from zhijian.core.settings import Settings
from zhijian.store.sources import Source

WECOM = json.loads((Path(__file__).resolve().parents[4] / "docs" / "wecom-kf-mapping.json").read_text())


def test_wecom_sync_msg_maps_onto_the_contract() -> None:
    mapping = check_mapping(WECOM)
    now_s = int(time.time())
    items = items_of(sync_msg_body(now_s), mapping)
    assert len(items) == 4
    first = parse_event(json.dumps(apply_mapping(items[0], mapping)).encode(), now_ms=now_s * 1000)
    assert (first.message_id, first.conversation_id, first.sender, first.customer_id, first.ts_ms) == \
        ("m1", "wkAJ2GCAAASSm4:wmAJ2GCAAAme1X", "customer", "wmAJ2GCAAAme1X", now_s * 1000)
    reply = parse_event(json.dumps(apply_mapping(items[1], mapping)).encode(), now_ms=now_s * 1000)
    assert (reply.sender, reply.agent_id, reply.text, reply.shop_id) == ("agent", "zhangsan", "哦，这个不知道",
                                                                         "shop-wecom-01")
    for skipped in items[2:]:
        with pytest.raises(Skipped):
            apply_mapping(skipped, mapping)


@pytest.mark.parametrize("bad", [[], {"fields": {"nope": "x"}}, {"fields": {"ts": {"scale": 2}}},
                                 {"items": 3}, {"only": {"a": "b"}}, {"extra": 1},
                                 {"fields": {"ts": {"path": "t", "scale": "x"}}}])
def test_malformed_mappings_are_refused(bad: object) -> None:
    with pytest.raises(MappingError):
        check_mapping(bad)


def test_body_shapes_one_array_and_json_lines() -> None:
    one = b'{"a": 1}'
    assert split_body(one, None) == [(one, {"a": 1}, None)]
    array = split_body(b'[{"a": 1}, {"b": 2}]', None)
    assert [i for _, i, _ in array] == [{"a": 1}, {"b": 2}]
    lines = split_body(b'{"a": 1}\n\nnot json\n\xff\xfe\n{"b": 2}\n', None)
    assert [(raw, item) for raw, item, _ in lines] == [(b'{"a": 1}', {"a": 1}), (b"not json", None),
                                                       (b"\xff\xfe", None), (b'{"b": 2}', {"b": 2})]
    assert "not valid JSON" in str(lines[1][2])
    assert "UTF-8" in str(lines[2][2])


def event(mid: str, **extra: object) -> dict[str, object]:
    return {"message_id": mid, "conversation_id": "c1", "shop_id": "s1", "agent_id": "a1", "customer_id": "u1",
            "sender": "agent", "type": "message", "text": "您好", "ts": int(time.time() * 1000), **extra}


def test_validation_answers_each_item_and_spots_duplicates() -> None:
    ingest = Ingest(Settings(), IngestLimits(recent_ids=2))
    body = "\n".join(json.dumps(e) for e in [event("m1"), event("m1"), event("m2", sender="robot"),
                                              event("m3", ts="yesterday")]).encode()
    items = ingest.validate(body, None, int(time.time() * 1000))
    assert [i.status for i in items] == ["accepted", "duplicate", "rejected", "rejected"]
    assert "unknown sender 'robot'" in str(items[2].reason)
    assert "not ISO-8601" in str(items[3].reason)
    ingest.remember("m1")
    now = int(time.time() * 1000)
    assert [i.status for i in ingest.validate(json.dumps(event("m1")).encode(), None, now)] == ["duplicate"]
    ingest.remember("m2")
    ingest.remember("m3")  # the memory is bounded: m1 is forgotten
    assert [i.status for i in ingest.validate(json.dumps(event("m1")).encode(), None,
                                              int(time.time() * 1000))] == ["accepted"]


class HeldProducer:
    """Stands in for aiokafka's producer: each send returns a delivery future the test settles."""

    def __init__(self, want: int) -> None:
        self.futures: list[tuple[str, bytes, asyncio.Future[object]]] = []
        self.want, self.sent = want, asyncio.Event()

    async def send(self, topic: str, value: bytes, key: bytes | None = None,
                   headers: object = None) -> asyncio.Future[object]:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.futures.append((topic, value, future))
        if len(self.futures) >= self.want:
            self.sent.set()
        return future


def test_a_full_buffer_answers_429_and_a_refused_send_503() -> None:
    source = Source("relay")

    async def run() -> None:
        ingest = Ingest(Settings(), IngestLimits(max_in_flight=2))
        held = HeldProducer(want=2)
        ingest.producer = held  # type: ignore[assignment]
        first = asyncio.create_task(ingest.submit(source, json.dumps([event("h1"), event("h2")]).encode()))
        await held.sent.wait()
        assert ingest.in_flight == 2
        busy = await ingest.submit(source, json.dumps(event("h3")).encode())
        assert busy.status_code == 429 and busy.headers["retry-after"] == "1"
        assert len(held.futures) == 2  # nothing of the refused request was sent
        for _, _, future in held.futures:
            future.set_result(None)
        done = await first
        assert done.status_code == 200 and json.loads(done.body)["accepted"] == 2 and ingest.in_flight == 0

        held.want, held.sent = 3, asyncio.Event()
        second = asyncio.create_task(ingest.submit(source, json.dumps(event("h3")).encode()))
        await held.sent.wait()
        held.futures[2][2].set_exception(KafkaError("broker gone"))
        refused = await second
        body = json.loads(refused.body)
        assert refused.status_code == 503 and body["results"][0]["status"] == "failed"
        assert [i.status for i in ingest.validate(json.dumps(event("h3")).encode(), None,
                                                  int(time.time() * 1000))] == ["accepted"]  # may be sent again

    asyncio.run(run())
