"""人工质检 through the API (issue 17, item 3): QA works through the day's sample — confirm/reject findings,
add manual ones (fatal included), score the human items, sign off — and the agent sees the result."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from api import quality, review, store_errors
from api.auth import Auth
from tests.factories import T0, AsgiClient, book_with_human_item, stored, token
from zhijian.scoring import rubric_lookup
from zhijian.store.database import Database

ADMIN = "admin-token-for-tests"


@pytest.fixture
def client(store: Database) -> AsgiClient:
    book = book_with_human_item()
    store.users.add("qa1", "pw-qa-1234", role="qa")
    store.users.add("a09", "pw-agent-1234", role="agent", agent_id="a09", team_id="t1")
    store.users.add("a10", "pw-agent-1234", role="agent", agent_id="a10", team_id="t1")
    stored(store, book, "rev-1", "说了多少遍了，您自己看详情")  # conflict −5, deflection −3
    stored(store, book, "rev-2", "您好，有货的，请您放心")
    day = rubric_lookup(book)("s1").day(T0)
    store.samples.save(day, [{"conversation_id": c, "agent_id": "a09", "reasons": ["random_1pct"]}
                              for c in ("rev-1", "rev-2")])
    app = FastAPI()
    store_errors.install(app)  # as create_app does
    auth = Auth(store, ADMIN)
    app.state.auth = auth  # api.deps finds it there
    app.include_router(quality.router(store, book, auth))
    app.include_router(review.router(store, book, auth))
    test_client = AsgiClient(app)
    test_client.day = day
    return test_client


def test_a_review_from_the_queue_to_the_agents_appeal(client: AsgiClient, store: Database) -> None:
    day = client.day
    qa, agent = token(store, "qa1", "pw-qa-1234"), token(store, "a09", "pw-agent-1234")
    other = token(store, "a10", "pw-agent-1234")
    assert client.get("/api/review/queue", params={"date": day}, headers=agent).status_code == 403
    queue = client.get("/api/review/queue", params={"date": day}, headers=qa).json()["conversations"]
    first = next(q for q in queue if q["conversation_id"] == "rev-1")
    # 服务态度 30 = 20 automatic + 准确全面 10 (pending: 0) − 5 conflict − 3 deflection = 12
    # 服务用语 30, 响应时效 30 (5 s, 5 s, 2/2), 流程规范 10: 12 + 30 + 30 + 10 = 82, pending 准确全面
    assert (first["status"], first["score"], first["pending_items"], first["undecided_findings"]) == (
        "to_review", 82.0, ["准确全面"], 2)

    assert client.get("/api/review/conversations/rev-1", headers=agent).status_code == 404  # not signed off
    early = client.post("/api/review/conversations/rev-1/sign-off", json={}, headers=qa)
    assert early.status_code == 409
    assert "2 finding(s)" in early.json()["detail"] and "准确全面" in early.json()["detail"]

    detail = client.get("/api/review/conversations/rev-1", headers=qa).json()
    assert [m["text"] for m in detail["transcript"]][:2] == ["在吗", "您好，很高兴为您服务"]
    assert detail["human_items"] == [{"item": "准确全面", "section": "服务态度", "max": 10, "points": None,
                                      "pending": True}]
    choices = {c["label"]: c for c in detail["labels"]}
    assert choices["wrong_product_info"]["fatal"] and choices["wrong_product_info"]["name"] == "产品信息答复错误"
    assert choices["broken_promise"]["points"] == -10 and not choices["broken_promise"]["fatal"]
    by_label = {f["label"]: f for f in detail["findings"]}
    assert set(by_label) == {"conflict", "deflection"} and all(f["undecided"] for f in by_label.values())

    rejected = client.post(f"/api/review/findings/{by_label['conflict']['finding_id']}/decision",
                           json={"confirm": False, "note": "顾客先骂人，语气可以理解"}, headers=qa).json()
    assert rejected["score"]["score"] == 87.0  # the conflict's −5 is back: 82 + 5
    confirmed = client.post(f"/api/review/findings/{by_label['deflection']['finding_id']}/decision",
                            json={"confirm": True}, headers=qa).json()
    assert confirmed["score"]["score"] == 87.0  # the deflection stays counted
    again = client.post(f"/api/review/findings/{by_label['conflict']['finding_id']}/decision",
                        json={"confirm": True}, headers=qa)
    assert again.status_code == 409

    bad = client.post("/api/review/conversations/rev-1/findings", json={"label": "made_up", "note": "x"}, headers=qa)
    assert bad.status_code == 422
    manual = client.post("/api/review/conversations/rev-1/findings",
                         json={"label": "broken_promise", "note": "答应当天发货，实际未发", "message_id": "a2"},
                         headers=qa)
    assert manual.status_code == 201
    assert manual.json()["score"]["score"] == 77.0  # 流程规范 10 − 10 (承诺未兑现): 87 − 10
    out_of_range = client.post("/api/review/conversations/rev-1/items", json={"points": {"准确全面": 11}}, headers=qa)
    assert out_of_range.status_code == 422
    scored = client.post("/api/review/conversations/rev-1/items", json={"points": {"准确全面": 8}}, headers=qa).json()
    # 服务态度 20 + 8 − 3 (deflection) = 25; 25 + 30 + 30 + 0 = 85, nothing pending
    assert scored["score"]["score"] == 85.0 and scored["score"]["breakdown"]["pending_items"] == []

    signed = client.post("/api/review/conversations/rev-1/sign-off", json={"note": "已与坐席沟通"}, headers=qa)
    assert signed.status_code == 200 and signed.json()["score"]["score"] == 85.0
    assert client.post("/api/review/conversations/rev-1/items", json={"points": {"准确全面": 10}},
                       headers=qa).status_code == 409  # signed off: only an appeal changes it now

    seen = client.get("/api/review/conversations/rev-1", headers=agent).json()
    assert seen["status"] == "signed_off" and seen["score"]["score"] == 85.0 and seen["appeal_deadline"]
    assert client.get("/api/review/conversations/rev-1", headers=other).status_code == 404
    assert [r["conversation_id"] for r in client.get("/api/review/results", headers=agent).json()["results"]] == [
        "rev-1"]
    actions = [(e["actor"], e["action"]) for e in seen["audit"]]
    assert actions == [("qa1", "review.reject"), ("qa1", "review.confirm"), ("qa1", "review.add_finding"),
                       ("qa1", "review.score_items"), ("qa1", "review.sign_off")]

    promise = next(f for f in seen["findings"] if f["label"] == "broken_promise")
    appeal = client.post(f"/api/findings/{promise['finding_id']}/appeals", json={"reason": "已按约发货，单号见备注"},
                         headers=agent)
    assert appeal.status_code == 201
    decided = client.post(f"/api/appeals/{appeal.json()['appeal_id']}/decision", json={"accept": True},
                          headers={"authorization": f"Bearer {ADMIN}"}).json()
    assert decided["score"]["score"] == 95.0  # the manual −10 is out: 85 + 10


def test_a_manual_fatal_finding_zeroes_the_score(client: AsgiClient, store: Database) -> None:
    qa = token(store, "qa1", "pw-qa-1234")
    added = client.post("/api/review/conversations/rev-2/findings",
                        json={"label": "wrong_product_info", "note": "面料答错：实为涤纶"}, headers=qa)
    assert added.status_code == 201
    score = added.json()["score"]
    assert (score["score"], score["fatal"], score["breakdown"]["fatal_labels"]) == (0.0, True, ["wrong_product_info"])
    assert client.post("/api/review/conversations/nope/findings", json={"label": "broken_promise", "note": "x"},
                       headers=qa).status_code == 404
