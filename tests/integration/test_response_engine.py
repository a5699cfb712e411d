"""The response-time engine through the real broker, worker and API."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.integration.harness import Stack, chat_event, http_json, produce_events, put_json, wait_for

pytestmark = pytest.mark.broker


def send(stack: Stack, events: list[dict[str, Any]]) -> None:
    produce_events(stack.settings.bootstrap_servers, stack.settings.topics.messages, events)


def alerts_for(stack: Stack, conv: str) -> list[dict[str, Any]]:
    _status, body = http_json(f"{stack.api_url}/api/alerts?limit=500", stack.token)
    return [a for a in body["alerts"] if a["conversation_id"] == conv]


def test_a_scripted_conversation_gives_exact_metrics_through_the_running_system(stack: Stack) -> None:
    conv = f"conv-{uuid.uuid4().hex[:8]}"
    t0 = int(time.time() * 1000) - 120_000

    def e(mid: str, sender: str, at_s: float, text: str = "您好", **kw: Any) -> dict[str, Any]:
        return chat_event(f"{conv}-{mid}", conv, sender, text, ts_ms=t0 + int(at_s * 1000), **kw)

    script = [
        e("c1", "customer", 0, "在吗", agent=None), e("c2", "customer", 3, "这个有货吗", agent=None),
        e("bot", "bot", 1, "自动回复：客服马上就来", agent=None),
        e("a1", "agent", 9, "您好，有货的，请问还有什么可以帮您", agent="A"),
        e("c3", "customer", 20, "那能换客服吗", agent=None),
        e("t", "system", 25, "", etype="transferred", agent="B"),
        e("b1", "agent", 40, "您好，我是售后专员", agent="B"),
        e("c4", "customer", 50, "好的", agent=None),
        e("b2", "agent", 62, "请您放心，感谢您的耐心，再见", agent="B"),
        e("end", "system", 70, "", etype="conversation_ended", agent=None),
    ]
    # out of order (c2 after the bot reply: within the 10 s window; the transfer 15 s behind b1:
    # late, still counted and flagged), and a duplicate delivery of a1
    arrivals = [script[0], script[2], script[1], script[3], script[4], script[6], script[5], script[7], script[3],
                script[8], script[9]]
    send(stack, arrivals)

    def closed() -> dict[str, Any] | None:
        status, body = http_json(f"{stack.api_url}/api/conversations/{conv}", stack.token)
        return body if status == 200 and body.get("status") == "closed" and body.get("source") == "stored" else None

    summary = wait_for(closed, 30, "the closing summary in the database")
    m = summary["metrics"]
    assert m["first_response_s"] == 9.0 and m["first_response_points"] == 10  # the bot reply does not count
    assert m["response_times_s"] == [9.0, 12.0] and m["response_agents"] == ["A", "B"]
    assert m["transfers"] == [{"ts_ms": t0 + 25_000, "from_agent": "A", "to_agent": "B", "gap_s": 15.0}]
    assert (m["turns"], m["answered_turns"], m["reply_rate"]) == (3, 3, 1.0)
    assert m["messages"] == {"customer": 4, "agent": 3, "bot": 1}
    assert (summary["agent_id"], summary["close_reason"], summary["late_events"]) == ("B", "ended", 1)
    assert [t["message_id"] for t in summary["transcript"] if t["late"]] == [f"{conv}-t"]
    assert summary["checks"]["greeting"] is True and summary["checks"]["closing"] is True
    assert [t["message_id"] for t in summary["transcript"]] == [f"{conv}-{x}" for x in
                                                                ("c1", "bot", "c2", "a1", "c3", "t", "b1", "c4", "b2",
                                                                 "end")]
    _status, listed = http_json(f"{stack.api_url}/api/conversations?agent_id=B&status=closed", stack.token)
    assert conv in [c["conversation_id"] for c in listed["conversations"]]
    assert all("transcript" not in c for c in listed["conversations"])


def test_a_waiting_customer_raises_customer_waiting_which_clears_when_answered(stack: Stack) -> None:
    conv = f"conv-{uuid.uuid4().hex[:8]}"
    now = int(time.time() * 1000)
    send(stack, [chat_event(f"{conv}-a0", conv, "agent", "您好，在的", agent="A", ts_ms=now - 40_000),
                 chat_event(f"{conv}-c1", conv, "customer", "人呢？怎么不回复", agent=None, ts_ms=now - 34_000)])

    def waiting_alert() -> dict[str, Any] | None:
        return next((a for a in alerts_for(stack, conv) if a["rule"] == "customer_waiting"), None)

    warning = wait_for(waiting_alert, 20, "customer_waiting in the database")
    assert (warning["severity"], warning["state"], warning["agent_id"]) == ("warning", "open", "A")
    assert warning["detail"]["threshold_s"] == 30.0 and warning["detail"]["waited_s"] >= 30.0
    _status, board = http_json(f"{stack.api_url}/api/conversations?status=waiting", stack.token)
    assert conv in [c["conversation_id"] for c in board["conversations"]]

    send(stack, [chat_event(f"{conv}-a1", conv, "agent", "抱歉久等了，马上为您查询", agent="A")])
    cleared = wait_for(lambda: next((a for a in alerts_for(stack, conv)
                                     if a["rule"] == "customer_waiting" and a["state"] == "cleared"), None),
                       20, "the waiting alert cleared")
    assert cleared["alert_id"] == warning["alert_id"] and cleared["revision"] == 3
    assert len([a for a in alerts_for(stack, conv) if a["rule"] == "customer_waiting"]) == 1


def test_a_quiet_conversation_is_closed_after_the_shops_inactivity_timeout(stack: Stack) -> None:
    _status, current = http_json(f"{stack.api_url}/api/rules", stack.token)
    document = dict(current["document"])
    document["shops"] = {**document.get("shops", {}), "shop-quick": {"timing": {"inactivity_close_s": 2}}}
    status, _body = put_json(f"{stack.api_url}/api/rules", stack.token, document)
    assert status == 200
    conv = f"conv-{uuid.uuid4().hex[:8]}"
    send(stack, [chat_event(f"{conv}-c1", conv, "customer", "在吗", agent=None, shop="shop-quick"),
                 chat_event(f"{conv}-a1", conv, "agent", "您好，请问有什么可以帮您", agent="A", shop="shop-quick"),
                 chat_event(f"{conv}-c2", conv, "customer", "运费多少", agent=None, shop="shop-quick")])

    def closed() -> dict[str, Any] | None:
        status, body = http_json(f"{stack.api_url}/api/conversations/{conv}", stack.token)
        return body if status == 200 and body.get("status") == "closed" else None

    summary = wait_for(closed, 30, "the inactivity close")
    assert summary["close_reason"] == "inactivity" and summary["metrics"]["reply_rate"] == 0.5
    unanswered = wait_for(lambda: [a for a in alerts_for(stack, conv) if a["rule"] == "unanswered_at_end"], 20,
                          "the unanswered_at_end alert")
    assert unanswered[0]["message_id"] == f"{conv}-c2"
