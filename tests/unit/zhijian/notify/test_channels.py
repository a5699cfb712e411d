"""Channels, signatures, digest, rate limit and retries of the notifier against local receivers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.receivers import Receivers, card_text
from zhijian.kafka.broker import free_port
from zhijian.notify.channels import ChannelWorker, Push
from zhijian.notify.config import NotifyConfigError, parse_notify

SECRETS = {"dingtalk": "SECd1ng-secret", "feishu": "feishu-secret", "webhook": "hook-secret"}
ALERT = {"alert_id": "a1b2c3", "rule": "banned_word", "severity": "critical", "fatal": True,
         "conversation_id": "conv-1", "shop_id": "shop-1", "agent_id": "a07", "team_id": "team-a",
         "message_id": "m1", "excerpt": "哦，这个不知道", "span": [0, 1], "ts_ms": 1, "detail": {}}


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    running = Receivers(dict(SECRETS)).start()
    yield running
    running.stop()


def section(receivers: Receivers, monkeypatch: pytest.MonkeyPatch, **extra: Any) -> dict[str, Any]:
    channels = {}
    for kind, url in receivers.urls().items():
        monkeypatch.setenv(f"T_{kind.upper()}_URL", url)
        if kind in SECRETS:
            monkeypatch.setenv(f"T_{kind.upper()}_SECRET", SECRETS[kind])
        channels[kind] = {"kind": "webhook" if kind == "broken" else kind, "url_env": f"T_{kind.upper()}_URL",
                          **({"secret_env": f"T_{kind.upper()}_SECRET"} if kind in SECRETS else {})}
    return {"dashboard_url": "http://qa.example", "channels": channels,
            "routes": [{"severities": ["critical"], "channels": ["dingtalk", "wecom", "feishu", "webhook"]}], **extra}


def worker(config: Any, name: str, client: httpx.AsyncClient, **kw: Any) -> ChannelWorker:
    return ChannelWorker(config.channels[name], client, rate_per_minute=lambda: kw.get("rate", 100),
                         digest_window_s=lambda: kw.get("window", 60.0), dashboard_url=lambda: config.dashboard_url,
                         backoff_s=0.01)


def test_each_platform_gets_a_card_signed_as_it_documents(receivers: Receivers,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_notify(section(receivers, monkeypatch))
    assert config.route(ALERT) == ["dingtalk", "wecom", "feishu", "webhook"]
    assert config.route({**ALERT, "severity": "warning"}) == []

    async def run() -> None:
        async with httpx.AsyncClient() as client:
            for name in config.route(ALERT):
                w = worker(config, name, client)
                w.offer_alert(ALERT)
                assert await w.deliver(w.queue.get_nowait())
                assert w.stats.sent == 1

    asyncio.run(run())
    got = receivers.wait(lambda r: len(r) >= 4)
    assert {r.path: (r.valid, r.why) for r in got} == {k: (True, "ok") for k in ("dingtalk", "wecom", "feishu",
                                                                                  "webhook")}
    for received in got:
        text = card_text(received)
        for part in ("禁忌用语", "a07", "team-a", "哦，这个不知道", "http://qa.example/#alert=a1b2c3"):
            assert part in text, (received.path, text)


def test_wrong_secret_is_refused_by_the_receiver_and_counted(receivers: Receivers,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_notify(section(receivers, monkeypatch))
    monkeypatch.setenv("T_DINGTALK_SECRET", "SECwrong")

    async def run() -> ChannelWorker:
        async with httpx.AsyncClient() as client:
            w = worker(config, "dingtalk", client)
            assert not await w.deliver(Push("t", "x"))
            return w

    w = asyncio.run(run())
    assert (w.stats.failed, w.stats.retries, w.stats.last_error) == (1, 3, "errcode 310000")
    assert [r.valid for r in receivers.of("dingtalk")] == [False] * 4


def test_repeats_fold_into_a_digest(receivers: Receivers, monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_notify(section(receivers, monkeypatch))

    async def run() -> ChannelWorker:
        async with httpx.AsyncClient() as client:
            w = worker(config, "wecom", client, window=0.3)
            w.start()
            for n in range(3):
                w.offer_alert({**ALERT, "alert_id": f"x{n}"})
            w.offer_alert({**ALERT, "alert_id": "other-team", "team_id": "team-b"})
            await w.until(lambda stats: stats.sent >= 3)
            await w.stop()
            return w

    w = asyncio.run(run())
    texts = [card_text(r) for r in receivers.of("wecom")]
    assert len(texts) == 3 and (w.stats.digested, w.stats.digests) == (2, 1)
    assert "#alert=x0" in texts[0] and "#alert=other-team" in texts[1]
    assert "又有 2 条同类告警" in texts[2]


def test_rate_limit_holds_pushes_beyond_the_rate(receivers: Receivers, monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_notify(section(receivers, monkeypatch))

    async def run() -> ChannelWorker:
        async with httpx.AsyncClient() as client:
            w = worker(config, "webhook", client, rate=2)
            w.start()
            for n in range(3):
                w.offer(Push(f"t{n}", "x"))
            await w.until(lambda stats: stats.rate_limited > 0)
            await w.stop()
            return w

    w = asyncio.run(run())
    assert (w.stats.sent, w.stats.rate_limited, w.queue.qsize()) == (2, 1, 0)  # the third waits its turn
    assert len(receivers.of("webhook")) == 2


def test_an_unreachable_receiver_is_retried_then_counted_without_leaking_the_url(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_DEAD_URL", f"http://127.0.0.1:{free_port()}/robot/send?access_token=SECRET-TOKEN")
    monkeypatch.setenv("T_DEAD_SECRET", "SECsecret-value")
    config = parse_notify({"channels": {"dead": {"kind": "dingtalk", "url_env": "T_DEAD_URL",
                                                 "secret_env": "T_DEAD_SECRET", "retries": 2}}})

    async def run() -> ChannelWorker:
        async with httpx.AsyncClient() as client:
            w = worker(config, "dead", client)
            assert not await w.deliver(Push("t", "x"))
            return w

    with caplog.at_level(logging.DEBUG):
        w = asyncio.run(run())
    assert (w.stats.failed, w.stats.retries, w.stats.last_error) == (1, 2, "ConnectError")
    assert "SECRET-TOKEN" not in caplog.text and "secret-value" not in caplog.text
    assert w.health()["failed"] == 1


@pytest.mark.parametrize(("bad", "why"), [
    ({"channels": {"x": {"kind": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send?access_token=abc"}}},
     "environment variable"),
    ({"channels": {"x": {"kind": "wecom", "url_env": "U", "secret": "s"}}}, "secret_env"),
    ({"channels": {"x": {"kind": "slack", "url_env": "U"}}}, "kind"),
    ({"channels": {}, "routes": [{"channels": ["nope"]}]}, "no such channel"),
    ({"channels": {}, "escalation": [{"after_s": -1}]}, "non-negative"),
])
def test_bad_notify_sections_are_refused(bad: dict[str, Any], why: str) -> None:
    with pytest.raises(NotifyConfigError, match=why):
        parse_notify(bad)
