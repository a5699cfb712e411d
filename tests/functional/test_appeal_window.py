"""Appeals (issue 17, item 6): a window from the result's notice and a decision deadline per shop, escalation when
the deadline passes, evidence kept, and the response-time items appealable."""

from __future__ import annotations

import copy
import datetime

import pytest
from fastapi import FastAPI

from api import quality, review, store_errors
from api.auth import Auth
from detectors import RuleBook, load_ruleset, parse_ruleset
from tests.factories import T0, AsgiClient, save_run, stored, token
from zhijian.core.contract import ChatEvent
from zhijian.scoring import rubric_lookup
from zhijian.store.database import Database
from zhijian.store.errors import AppealError

HOUR = datetime.timedelta(hours=1)


def book(window_h: float = 72, decision_h: float = 48) -> RuleBook:
    document = copy.deepcopy(dict(load_ruleset().document))
    document["shops"] = {"s1": {"rubric": {"appeal_window_h": window_h, "appeal_decision_h": decision_h}}}
    return RuleBook(parse_ruleset(document))


def conflict_finding(store: Database, conv: str) -> str:
    found = [f for f in store.findings.find(conversation_id=conv) if f["label"] == "conflict"]
    assert len(found) == 1
    return str(found[0]["finding_id"])


def signed_off(store: Database, rules: RuleBook, conv: str) -> datetime.datetime:
    """Review ``conv`` (confirm both findings) and sign it off: the result's notice."""
    lookup = rubric_lookup(rules)
    for finding in store.findings.find(conversation_id=conv):
        store.review.decide_finding(finding["finding_id"], confirm=True, reviewer="qa1", note="", rubric_for=lookup)
    done = store.review.sign_off(conv, reviewer="qa1", note="", rubric_for=lookup)
    return datetime.datetime.fromisoformat(done["signed_off_at"])


def test_the_window_runs_from_the_sign_off_per_shop(store: Database) -> None:
    rules = book(window_h=24)
    lookup = rubric_lookup(rules)
    stored(store, rules, "w-1", "说了多少遍了，您自己看详情")
    finding = conflict_finding(store, "w-1")
    notice = signed_off(store, rules, "w-1")
    with pytest.raises(AppealError, match="appeal window closed"):  # shop s1: 24 h, and 25 h have passed
        store.appeals.open(finding, agent_id="a09", reason="迟了", rubric_for=lookup, now=notice + 25 * HOUR)
    appeal = store.appeals.open(finding, agent_id="a09", reason="顾客先骂人", evidence="见订单 123 的留言",
                               rubric_for=lookup, now=notice + 23 * HOUR)
    assert appeal["window_ends"] == (notice + 24 * HOUR).isoformat(timespec="milliseconds")
    assert appeal["evidence"] == "见订单 123 的留言"


def test_automatic_results_are_notified_by_the_days_report(store: Database) -> None:
    rules = book()
    lookup = rubric_lookup(rules)
    stored(store, rules, "w-2", "说了多少遍了，您自己看详情")
    finding = conflict_finding(store, "w-2")
    day = lookup("s1").day(T0)
    published = datetime.datetime(2026, 11, 20, 1, 0, tzinfo=datetime.UTC)
    assert store.appeals.mark_published(day, now=published) == published.isoformat(timespec="milliseconds")
    assert store.appeals.mark_published(day, now=published + 5 * HOUR) == published.isoformat(timespec="milliseconds")
    with pytest.raises(AppealError, match="appeal window closed"):  # the seed's 72 h from the first publication
        store.appeals.open(finding, agent_id="a09", reason="x", rubric_for=lookup, now=published + 73 * HOUR)
    store.appeals.open(finding, agent_id="a09", reason="x", rubric_for=lookup, now=published + 71 * HOUR)


def test_a_late_decision_is_escalated_once(store: Database) -> None:
    rules = book(decision_h=48)
    lookup = rubric_lookup(rules)
    stored(store, rules, "w-3", "说了多少遍了，您自己看详情")
    opened = datetime.datetime(2026, 11, 21, 2, 0, tzinfo=datetime.UTC)
    appeal = store.appeals.open(conflict_finding(store, "w-3"), agent_id="a09", reason="r", evidence="e",
                               rubric_for=lookup, now=opened)
    assert appeal["decide_by"] == (opened + 48 * HOUR).isoformat(timespec="milliseconds")
    assert store.appeals.escalate_late(now=opened + 47 * HOUR) == []
    late = store.appeals.escalate_late(now=opened + 49 * HOUR)
    assert [a["appeal_id"] for a in late] == [appeal["appeal_id"]]
    assert store.appeals.escalate_late(now=opened + 50 * HOUR) == []  # flagged once
    listed = store.appeals.with_terms(status="open")
    assert [(a["appeal_id"], a["escalated"], a["evidence"]) for a in listed] == [(appeal["appeal_id"], True, "e")]
    entries = store.audit.trail(appeal["appeal_id"])
    assert [(e["actor"], e["action"]) for e in entries] == [("a09", "appeal.open"), ("system", "appeal.escalated")]
    decided = store.appeals.decide(appeal["appeal_id"], accept=False, reviewer="qa1", note="", rubric_for=lookup)
    assert decided["status"] == "rejected"  # a late decision is still a decision


def slow_conversation(store: Database, rules: RuleBook) -> None:
    def event(mid: str, sender: str, at_s: float, text: str = "", etype: str = "message") -> ChatEvent:
        return ChatEvent(message_id=mid, conversation_id="slow", shop_id="s1", team_id="t1", agent_id="a09",
                         customer_id="u1", sender=sender, type=etype, text=text, ts_ms=T0 + int(at_s * 1000))

    save_run(store, rules, (event("c1", "customer", 0, "在吗"), event("a1", "agent", 22, "您好，很高兴为您服务"),
                            event("a2", "agent", 25, "感谢您的耐心，祝您生活愉快"),
                            event("end", "system", 30, etype="conversation_ended")))


def test_a_response_time_item_is_appealable(store: Database) -> None:
    rules = book()
    slow_conversation(store, rules)
    store.users.add("a09", "pw-agent-1234", role="agent", agent_id="a09", team_id="t1")
    app = FastAPI()
    store_errors.install(app)  # as create_app does
    auth = Auth(store, "admin-token")
    app.state.auth = auth  # api.deps finds it there
    app.include_router(quality.router(store, rules, auth))
    app.include_router(review.router(store, rules, auth))
    client = AsgiClient(app)
    agent = token(store, "a09", "pw-agent-1234")
    # first response 22 s → 3 of 10; average 22 s → 10; reply rate 10; the rest full: 100 − 7 = 93
    assert store.scores.get("slow")["score"] == 93.0  # type: ignore[index]
    full = client.post("/api/conversations/slow/items/avg_response/appeals", json={"reason": "x"}, headers=agent)
    assert full.status_code == 409 and "lost no points" in full.json()["detail"]
    assert client.post("/api/conversations/slow/items/greeting/appeals", json={"reason": "x"},
                       headers=agent).status_code == 422
    opened = client.post("/api/conversations/slow/items/first_response/appeals",
                         json={"reason": "系统故障，消息延迟推送", "evidence": "运维工单 OPS-42"}, headers=agent)
    assert opened.status_code == 201 and opened.json()["evidence"] == "运维工单 OPS-42"
    again = client.post("/api/conversations/slow/items/first_response/appeals", json={"reason": "x"}, headers=agent)
    assert again.status_code == 409  # already under appeal
    listed = client.get("/api/review/appeals", headers={"authorization": "Bearer admin-token"}).json()["appeals"]
    assert [(a["finding_id"], a["evidence"], a["escalated"]) for a in listed] == [
        (opened.json()["finding_id"], "运维工单 OPS-42", False)]
    decided = client.post(f"/api/appeals/{opened.json()['appeal_id']}/decision", json={"accept": True},
                          headers={"authorization": "Bearer admin-token"}).json()
    assert decided["score"]["score"] == 100.0  # first response restored to 10: 93 + 7
    assert decided["score"]["labels"] == {}  # an item appeal is not a finding label
