"""zhijian notify on real processes: a critical alert reaches fake DingTalk, WeCom and Feishu receivers
with valid signatures, a hung receiver delays none of them, and an unclaimed alert escalates."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.integration.harness import Proc, Stack, chat_event, http_json, post_json, put_json, wait_for
from tests.receivers import Receivers, card_text
from zhijian.kafka.broker import free_port

pytestmark = pytest.mark.broker
SECRETS = {"dingtalk": "SECding-live", "feishu": "feishu-live", "webhook": "hook-live"}


async def topic_records(stack: Stack, topic: str, predicate: Any, timeout_s: float = 30.0) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.settings.bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(stack.settings.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                for record in batch:
                    value = json.loads(record.value)
                    if predicate(value):
                        return dict(value)
        raise AssertionError(f"no matching record on {topic}")
    finally:
        await consumer.stop()


def alert_id_in(text: str) -> str:
    found = re.search(r"#alert=([0-9a-f]+)", text)
    assert found, text
    return found.group(1)


def test_pushes_signed_isolated_and_escalated(stack: Stack) -> None:
    receivers = Receivers(dict(SECRETS)).start()
    notifier: Proc | None = None
    try:
        env = dict(stack.env)
        channels: dict[str, Any] = {}
        for kind, url in receivers.urls().items():
            env[f"ZHIJIAN_T_{kind.upper()}_URL"] = url
            channel = {"kind": "webhook" if kind == "broken" else kind, "url_env": f"ZHIJIAN_T_{kind.upper()}_URL"}
            if kind in SECRETS:
                env[f"ZHIJIAN_T_{kind.upper()}_SECRET"] = SECRETS[kind]
                channel["secret_env"] = f"ZHIJIAN_T_{kind.upper()}_SECRET"
            if kind == "broken":
                channel.update(retries=0, timeout_s=60)
            channels[kind] = channel
        team = f"team-{uuid.uuid4().hex[:6]}"
        _, current = http_json(f"{stack.api_url}/api/rules", stack.token)
        document = dict(current["document"])
        document["notify"] = {
            "dashboard_url": "http://floor.example", "digest_window_s": 0, "channels": channels,
            "routes": [{"teams": [team], "severities": ["critical"], "rules": ["banned_word"],
                        "channels": ["broken", "dingtalk", "wecom", "feishu"]}],
            "escalation": [{"teams": [team], "severities": ["critical"], "rules": ["banned_word"], "after_s": 3,
                            "label": "主管", "channels": ["webhook"]}]}
        status, published = put_json(f"{stack.api_url}/api/rules", stack.token, document)
        assert status == 200, published
        env["ZHIJIAN_NOTIFY_PORT"] = str(free_port())
        notifier = Proc("notify", env, stack.workdir, "notify")
        health_url = f"http://127.0.0.1:{env['ZHIJIAN_NOTIFY_PORT']}/health"

        def ready() -> bool:
            notifier.assert_running()
            code, body = http_json(health_url)
            return code == 200 and body["ruleset"] == published["version"] and body["escalation_steps"] == 1

        wait_for(ready, 60, "the notifier with the [notify] section")

        run = uuid.uuid4().hex[:6]
        events = [chat_event(f"n-{run}-{n}", f"notify-{run}-{n}", "agent", "哦，这个不知道", agent=f"ag{n}", team=team)
                  for n in range(2)]
        code, body = post_json(f"{stack.api_url}/api/events", stack.token, events)
        assert code == 200 and body["accepted"] == 2, body

        def two_each(received: list[Any]) -> bool:
            kinds = [r.path for r in received]
            return all(kinds.count(k) >= 2 for k in ("dingtalk", "wecom", "feishu"))

        # The broken receiver holds its first request until released: the others arrive meanwhile.
        got = receivers.wait(two_each, 60)
        assert not receivers.of("broken")
        for received in got:
            assert received.valid, (received.path, received.why)
            text = card_text(received)
            for part in ("禁忌用语", team, "哦，这个不知道", "http://floor.example/#alert="):
                assert part in text, (received.path, text)
        first, second = (alert_id_in(card_text(r)) for r in receivers.of("dingtalk"))
        # the push can be faster than the API's own feed and the database: claim as soon as the API knows it
        code, claimed = wait_for(lambda: (lambda r: r if r[0] != 404 else None)(
            post_json(f"{stack.api_url}/api/alerts/{second}/claim", stack.token, {})), 30, "the alert claimable")
        assert code == 200, claimed

        escalations = receivers.wait(lambda r: any(x.path == "webhook" for x in r), 30)
        hooks = [r for r in escalations if r.path == "webhook"]
        assert len(hooks) == 1 and hooks[0].valid, hooks
        assert "升级（主管）" in card_text(hooks[0]) and f"#alert={first}" in card_text(hooks[0])
        wait_for(lambda: http_json(health_url)[1]["escalations_skipped"] >= 1, 30, "the claimed alert not escalated")
        assert len(receivers.of("webhook")) == 1

        _, audit = http_json(f"{stack.api_url}/api/audit?subject={first}", stack.token)
        steps = [e for e in audit["entries"] if e["action"] == "alert.escalated"]
        assert len(steps) == 1 and steps[0]["actor"] == "notifier" and steps[0]["detail"]["channels"] == ["webhook"]
        action = asyncio.run(topic_records(stack, stack.settings.topics.alert_actions,
                                           lambda v: v.get("action") == "escalated" and v["alert_id"] == first))
        assert action["kind"] == "action" and action["state"] == "open" and action["escalation"]["step"] == "主管"

        receivers.release_broken.set()
        wait_for(lambda: http_json(health_url)[1]["channels"]["broken"]["failed"] >= 1, 30, "the failure counted")
        _, health = http_json(health_url)
        assert health["channels"]["broken"]["last_error"] == "HTTP 500"
        assert health["channels"]["dingtalk"]["sent"] >= 2 and health["channels"]["dingtalk"]["failed"] == 0
        assert "SECding-live" not in notifier.log() and "ding-token" not in notifier.log()
    finally:
        receivers.stop()
        if notifier is not None:
            notifier.stop()
