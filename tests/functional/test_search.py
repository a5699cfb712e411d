"""GET /api/search on SQLite and PostgreSQL: conversations by id, order number or a keyword in the stored
transcript, scoped like the other lists, paged, with LIKE's wildcards matched literally and CJK text."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI

from api import search as search_api
from api.auth import Auth
from zhijian.store.database import Database
from zhijian.store.schema import messages
from zhijian.store.search import Cursor, TranscriptSearch, excerpt, like_pattern

ADMIN_TOKEN = "admin-token-for-the-search-test"
T0 = 1_795_000_000_000


class Client:
    """The router in process, over ASGI (no server, no broker)."""

    def __init__(self, store: Database) -> None:
        self.app = FastAPI()
        self.app.state.auth = Auth(store, ADMIN_TOKEN)
        self.app.include_router(search_api.router(TranscriptSearch(store.engine)))

    def get(self, token: str | None, **params: Any) -> tuple[int, Any]:
        async def call() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://s") as c:
                return await c.get(f"/api/search?{urlencode(params)}",
                                   headers={"Authorization": f"Bearer {token}"} if token else {})
        response = asyncio.run(call())
        return response.status_code, response.json()


def conversation(store: Database, cid: str, team: str | None, agent: str | None,
                 lines: list[tuple[str, str]], t0: int = T0) -> None:
    """A conversation's snapshot and its stored transcript: ``lines`` as (sender, text), one second apart."""
    store.conversations.save([{"conversation_id": cid, "shop_id": "shop-1", "team_id": team, "agent_id": agent,
                               "status": "closed", "opened_ms": t0, "version": 1, "final": True}])
    rows = [{"conversation_id": cid, "message_id": f"{cid}-{i}", "ts_ms": t0 + 1000 * i, "seq": i,
             "sender": sender, "agent_id": agent if sender == "agent" else None, "text": text, "late": False,
             "ruleset": "seed", "marks": "[]"} for i, (sender, text) in enumerate(lines)]
    with store.engine.begin() as conn:
        conn.execute(messages.insert(), rows)


def signed_in(store: Database, username: str, role: str, **scope: str) -> str:
    store.users.add(username, f"{username}-password", role=role, **scope)
    result = store.sessions.login(username, f"{username}-password")
    assert result is not None
    return result[0]


@pytest.fixture
def floor(store: Database) -> Database:
    conversation(store, "c-a1", "A", "agent-a1", [("customer", "订单号 DD2026112300017 还没发货"),
                                                  ("agent", "您好，我帮您查一下订单 DD2026112300017")])
    conversation(store, "c-a2", "A", "agent-a2", [("customer", "退款什么时候到账？"), ("agent", "三个工作日内")],
                 t0=T0 + 60_000)
    conversation(store, "c-b1", "B", "agent-b1", [("customer", "我的订单 DD2026112300099 退款"),
                                                  ("agent", "好的，正在为您处理退款")], t0=T0 + 120_000)
    return store


def ids(body: dict[str, Any]) -> list[str]:
    return [r["conversation_id"] for r in body["results"]]


def test_keyword_order_number_and_conversation_id_find_the_conversation(floor: Database) -> None:
    client = Client(floor)
    status, body = client.get(ADMIN_TOKEN, q="DD2026112300017")
    assert status == 200
    assert ids(body) == ["c-a1"]
    hit = body["results"][0]
    assert hit["matches"] == 2 and hit["message_id"] == "c-a1-1" and hit["sender"] == "agent"  # the newest match
    start, end = hit["match"]
    assert hit["excerpt"][start:end] == "DD2026112300017"
    assert (hit["team_id"], hit["agent_id"], hit["shop_id"], hit["status"]) == ("A", "agent-a1", "shop-1", "closed")
    _, body = client.get(ADMIN_TOKEN, q="dd2026112300017")  # order numbers: case does not matter
    assert ids(body) == ["c-a1"]
    # CJK keywords, newest match first
    _, body = client.get(ADMIN_TOKEN, q="退款")
    assert ids(body) == ["c-b1", "c-a2"]
    assert body["results"][0]["excerpt"] == "好的，正在为您处理退款"
    # a conversation by its id: found though no message text contains it
    _, body = client.get(ADMIN_TOKEN, q="c-a2")
    assert ids(body) == ["c-a2"] and body["results"][0]["message_id"] is None
    _, body = client.get(ADMIN_TOKEN, q="没有这个词")
    assert body == {"results": [], "next_before": None}
    _, body = client.get(ADMIN_TOKEN, q="   ")
    assert body == {"results": [], "next_before": None}


def test_scope_a_floor_lead_finds_their_team_an_agent_their_own(floor: Database) -> None:
    client = Client(floor)
    lead_a = signed_in(floor, "lead-a", "floor_lead", team_id="A")
    agent_a2 = signed_in(floor, "agent-a2", "agent", team_id="A", agent_id="agent-a2")
    assert ids(client.get(lead_a, q="退款")[1]) == ["c-a2"]  # team B's refund is not theirs
    assert ids(client.get(lead_a, q="DD20261123")[1]) == ["c-a1"]
    assert ids(client.get(lead_a, q="c-b1")[1]) == []  # nor by its id
    assert ids(client.get(agent_a2, q="订单")[1]) == []
    assert ids(client.get(agent_a2, q="工作日")[1]) == ["c-a2"]
    assert ids(client.get(ADMIN_TOKEN, q="DD20261123")[1]) == ["c-b1", "c-a1"]


def test_permissions_and_bad_input(floor: Database) -> None:
    client = Client(floor)
    assert client.get(None, q="退款")[0] == 401
    assert client.get("not-a-token", q="退款")[0] == 401
    for params in ({}, {"q": ""}, {"q": "x" * 201}, {"q": "a\x00b"}, {"q": "退款", "limit": 0},
                   {"q": "退款", "limit": 101}, {"q": "退款", "before": "yesterday"},
                   {"q": "退款", "before": "9" * 19 + ":c"}):
        status, body = client.get(ADMIN_TOKEN, **params)
        assert status == 422, params
        assert isinstance(body["detail"], list)


def test_paging_walks_every_match_once(store: Database) -> None:
    for i in range(7):
        conversation(store, f"p-{i}", "A", "agent-p", [("customer", f"第{i}单 退货")], t0=T0 + (i // 2) * 1000)
    client = Client(store)
    seen: list[str] = []
    before: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"q": "退货", "limit": 3} | ({"before": before} if before else {})
        status, body = client.get(ADMIN_TOKEN, **params)
        assert status == 200
        seen += ids(body)
        pages += 1
        before = body["next_before"]
        if before is None:
            break
    assert pages == 3
    # newest first; equal times (pairs share a second) in descending id order: a stable, complete walk
    assert seen == ["p-6", "p-5", "p-4", "p-3", "p-2", "p-1", "p-0"]


def test_like_wildcards_match_only_themselves(store: Database) -> None:
    conversation(store, "w-1", "A", "agent-w", [("customer", "折扣 100% 是真的吗")])
    conversation(store, "w-2", "A", "agent-w", [("customer", "折扣 1000 是真的吗")])
    conversation(store, "w-3", "A", "agent-w", [("customer", "编号 a_b 的商品")])
    conversation(store, "w-4", "A", "agent-w", [("customer", "编号 axb 的商品")])
    conversation(store, "w-5", "A", "agent-w", [("customer", "路径 C:\\temp 打不开")])
    client = Client(store)
    assert ids(client.get(ADMIN_TOKEN, q="100%")[1]) == ["w-1"]
    assert ids(client.get(ADMIN_TOKEN, q="a_b")[1]) == ["w-3"]
    assert ids(client.get(ADMIN_TOKEN, q="%")[1]) == ["w-1"]
    assert ids(client.get(ADMIN_TOKEN, q="_")[1]) == ["w-3"]
    assert ids(client.get(ADMIN_TOKEN, q="C:\\temp")[1]) == ["w-5"]
    assert ids(client.get(ADMIN_TOKEN, q="\\")[1]) == ["w-5"]


def test_helpers() -> None:
    assert like_pattern("50%_a\\b") == "%50\\%\\_a\\\\b%"
    text = "前" * 100 + "DD123" + "后" * 100
    window, start, end = excerpt(text, "dd123")
    assert window[start:end] == "DD123" and window.startswith("…") and window.endswith("…")
    assert excerpt("短句", "短") == ("短句", 0, 1)
    assert str(Cursor.parse("12:a:b")) == "12:a:b"
