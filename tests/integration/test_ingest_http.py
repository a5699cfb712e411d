"""POST /api/events on real processes: single, batch, JSON lines, malformed, duplicated → the wall once."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import websockets
from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.engine.conversation import default_rulebook
from tests.factories import sync_msg_body
from tests.integration.harness import ROOT, Stack, chat_event, http_json, wait_for, ws_url

pytestmark = pytest.mark.broker


def post(url: str, token: str, body: bytes) -> tuple[int, Any, dict[str, str]]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Authorization": f"Bearer {token}",
                                                                                "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null"), dict(exc.headers)


def add_source(stack: Stack, name: str, mapping: Path | None = None) -> str:
    args = [sys.executable, "-m", "zhijian", "source", "add", name]
    if mapping is not None:
        args += ["--mapping", str(mapping)]
    out = subprocess.run(args, cwd=ROOT, env=stack.env, capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1]


async def collect_alerts(url: str, until: Any, ready: asyncio.Event,
                         timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """Alerts from the socket until ``until(seen)``; ``ready`` is set when the API says the socket is
    subscribed (its ``ready`` frame): anything produced after that reaches it."""
    seen: list[dict[str, Any]] = []
    async with websockets.connect(url) as socket:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not until(seen):
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"timed out; alerts so far: {[(a['rule'], a['message_id']) for a in seen]}")
            payload = json.loads(await asyncio.wait_for(socket.recv(), remaining))
            if payload.get("kind") == "ready":
                ready.set()
            if "alert_id" in payload and payload.get("kind") != "action":
                seen.append(payload)
    return seen


async def deadletters(stack: Stack, count: int, timeout_s: float = 30.0) -> list[Any]:
    topic = stack.settings.topics.deadletter
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.settings.bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(stack.settings.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while len(records) < count and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


def test_http_events_reach_the_wall_exactly_once(stack: Stack) -> None:
    url = f"{stack.api_url}/api/events"
    token = add_source(stack, "relay")
    run = uuid.uuid4().hex[:6]
    convs = [f"http-{run}-{n}" for n in range(5)]
    mids = [f"m-{run}-{n}" for n in range(5)]
    bad = "我的订单呢"
    per_message = len({f.rule_id for f in default_rulebook().detect("哦，这个不知道", "agent") if f.alert})
    assert per_message >= 1

    def violation(n: int) -> dict[str, Any]:
        return chat_event(mids[n], convs[n], "agent", "哦，这个不知道", agent=f"a{n}", team="team-a")

    async def scenario() -> list[dict[str, Any]]:
        ws = await asyncio.to_thread(ws_url, stack.settings.api_port, "/ws/alerts", stack.token)
        ready = asyncio.Event()
        waiter = asyncio.create_task(collect_alerts(ws, lambda seen: len(seen) >= per_message * len(mids), ready))
        await asyncio.wait_for(ready.wait(), 30)  # subscribed before the events are posted

        def posts() -> None:
            status, body, _ = post(url, token, json.dumps(violation(0), ensure_ascii=False).encode())
            assert status == 200 and body["accepted"] == 1, body
            missing = {k: v for k, v in chat_event("x1", convs[1], "customer", bad).items() if k != "shop_id"}
            status, body, _ = post(url, token, json.dumps([violation(1), violation(2), missing]).encode())
            assert status == 200, body
            assert [r["status"] for r in body["results"]] == ["accepted", "accepted", "rejected"]
            assert body["results"][2]["reason"] == "missing field 'shop_id'"
            lines = b"\n".join([json.dumps(violation(3)).encode(), b"{not json", json.dumps(violation(1)).encode(),
                                json.dumps(violation(3)).encode()])
            status, body, _ = post(url, token, lines)
            assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "duplicate", "duplicate"], body
            status, body, _ = post(url, token, json.dumps(violation(0)).encode())  # re-sent by the platform
            assert (status, body["duplicate"], body["accepted"]) == (200, 1, 0)
            status, body, _ = post(url, token, json.dumps(violation(4)).encode())  # the last one
            assert body["accepted"] == 1

        await asyncio.to_thread(posts)
        return await waiter

    alerts = asyncio.run(scenario())
    ids = [a["alert_id"] for a in alerts]
    assert len(ids) == len(set(ids)), "an alert reached the wall twice"
    assert {a["message_id"] for a in alerts} == set(mids)

    def stored() -> list[str]:
        _, body = http_json(f"{stack.api_url}/api/alerts?limit=500", stack.token)
        return sorted(a["alert_id"] for a in body["alerts"] if a["conversation_id"] in convs)

    assert len(ids) == per_message * len(mids)
    wait_for(lambda: len(stored()) >= len(ids), 30, "the alerts in SQL")
    assert stored() == sorted(ids)

    dead = asyncio.run(deadletters(stack, 2))
    reasons = {dict(r.headers)["zhijian-reason"].decode(): r.value for r in dead}
    assert sorted(reasons) == ["missing field 'shop_id'", "value is not valid JSON: Expecting property name enclosed "
                                                          "in double quotes"]
    assert reasons[max(reasons)] == b"{not json"  # the original bytes
    assert json.loads(reasons["missing field 'shop_id'"])["text"] == bad
    assert all(dict(r.headers)["zhijian-source"] == b"relay" for r in dead)


def test_tokens_limits_and_a_mapped_platform_callback(stack: Stack) -> None:
    url = f"{stack.api_url}/api/events"
    event = json.dumps(chat_event(uuid.uuid4().hex, "c-tok", "customer", "在吗")).encode()
    assert post(url, "src_not-a-token", event)[0] == 401
    assert post(url, "", event)[0] == 401
    assert post(url, stack.token, event)[0] == 200  # an admin may try it out
    source = add_source(stack, "tokens")
    assert http_json(f"{stack.api_url}/api/alerts", source)[0] == 401  # a source token only ingests
    status, body, _ = post(url, source, b"[" + b",".join([event] * 12000) + b"]")
    assert status == 413, body
    assert post(url, source, b"")[0] == 422

    wecom = add_source(stack, "wecom-kf", ROOT / "docs" / "wecom-kf-mapping.json")
    callback = sync_msg_body(int(time.time()))
    run = uuid.uuid4().hex[:6]
    for item in callback["msg_list"]:  # type: ignore[union-attr]
        if "msgid" in item:
            item["msgid"] = f"{item['msgid']}-{run}"
            item["external_userid"] = f"wm-{run}"

    async def scenario() -> list[dict[str, Any]]:
        ws = await asyncio.to_thread(ws_url, stack.settings.api_port, "/ws/alerts", stack.token)
        ready = asyncio.Event()
        waiter = asyncio.create_task(collect_alerts(ws, lambda seen: any(a["message_id"] == f"m2-{run}"
                                                                         for a in seen), ready))
        await asyncio.wait_for(ready.wait(), 30)
        status, body, _ = await asyncio.to_thread(post, url, wecom, json.dumps(callback).encode())
        assert status == 200, body
        assert [r["status"] for r in body["results"]] == ["accepted", "accepted", "skipped", "skipped"]
        return await waiter

    alerts = asyncio.run(scenario())
    alert = next(a for a in alerts if a["message_id"] == f"m2-{run}")
    assert (alert["conversation_id"], alert["agent_id"], alert["shop_id"]) == \
        (f"wkAJ2GCAAASSm4:wm-{run}", "zhangsan", "shop-wecom-01")


def test_pre_send_check_answers_what_the_pipeline_raises(stack: Stack) -> None:
    texts = ["哦，这个不知道", "你有病吧，自己去看详情页", "您好，请问有什么可以帮您？",
             "加我微信吧，我的手机13812345678"]
    run = uuid.uuid4().hex[:6]
    sent = {f"chk-{run}-{n}": text for n, text in enumerate(texts)}
    checks = {}
    for mid, text in sent.items():
        status, body, _ = post(f"{stack.api_url}/api/check", stack.token, json.dumps(
            {"sender": "agent", "shop_id": "shop-1", "text": text, "team_id": "team-a",
             "agent_id": "a9"}).encode())
        assert status == 200, body
        checks[mid] = body
    expected = sum(len(c["alerts"]) for c in checks.values())
    assert expected >= 3 and checks[f"chk-{run}-2"]["verdict"] == "ok"

    async def scenario() -> list[dict[str, Any]]:
        ws = await asyncio.to_thread(ws_url, stack.settings.api_port, "/ws/alerts", stack.token)
        ready = asyncio.Event()
        waiter = asyncio.create_task(collect_alerts(ws, lambda seen: len(
            [a for a in seen if a["message_id"] in sent]) >= expected, ready))
        await asyncio.wait_for(ready.wait(), 30)
        events = [chat_event(mid, f"conv-{mid}", "agent", text, agent="a9", team="team-a")
                  for mid, text in sent.items()]
        _, body, _ = await asyncio.to_thread(post, f"{stack.api_url}/api/events", stack.token,
                                             json.dumps(events, ensure_ascii=False).encode())
        assert body["accepted"] == len(events), body
        return await waiter

    alerts = [a for a in asyncio.run(scenario()) if a["message_id"] in sent]

    def shape(alert: dict[str, Any]) -> tuple[Any, ...]:
        return alert["rule"], alert["severity"], alert["fatal"], alert["excerpt"], tuple(alert["span"])

    for mid in sent:
        live = sorted(shape(a) for a in alerts if a["message_id"] == mid)
        assert live == sorted(shape(a) for a in checks[mid]["alerts"]), sent[mid]
    assert post(f"{stack.api_url}/api/check", "nobody", b"{}")[0] == 401
    source = add_source(stack, "workbench")
    status, body, _ = post(f"{stack.api_url}/api/check", source, json.dumps(
        {"shop_id": "shop-1", "text": texts[0]}).encode())
    assert status == 200 and body["verdict"] in ("warn", "block")


def test_excel_downloads_of_the_wall_and_the_scoreboard(stack: Stack) -> None:
    import io

    import openpyxl

    run = uuid.uuid4().hex[:6]
    event = chat_event(f"xl-{run}", f"xl-conv-{run}", "agent", "哦，这个不知道", agent="xl-agent", team="team-xl")
    assert post(f"{stack.api_url}/api/events", stack.token, json.dumps(event).encode())[0] == 200

    def download(path: str, token: str) -> tuple[int, bytes, dict[str, str]]:
        request = urllib.request.Request(f"{stack.api_url}{path}", headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), dict(exc.headers)

    def wall_has_it() -> Any:
        status, data, headers = download("/api/export/alerts.xlsx", stack.token)
        assert status == 200 and headers["content-type"].startswith("application/vnd.openxmlformats")
        ws = openpyxl.load_workbook(io.BytesIO(data))["告警"]
        rows = [[c.value for c in row] for row in ws.iter_rows(min_row=2)]
        return ws if any(r[7] == f"xl-conv-{run}" for r in rows) else None

    ws = wait_for(wall_has_it, 30, "the alert in the wall's export")
    assert [c.value for c in ws[1]][:4] == ["时间", "规则", "严重程度", "致命"] and ws.freeze_panes == "A2"
    mine = [[c.value for c in row] for row in ws.iter_rows(min_row=2) if row[7].value == f"xl-conv-{run}"]
    assert {r[1] for r in mine} >= {"禁忌用语"} and all(r[6] == "xl-agent" for r in mine)
    status, data, _ = download("/api/export/agents.xlsx", stack.token)
    assert status == 200 and [c.value for c in openpyxl.load_workbook(io.BytesIO(data))["坐席得分"][1]][:2] == \
        ["坐席", "班组"]
    assert download("/api/export/alerts.xlsx", "nobody")[0] == 401
