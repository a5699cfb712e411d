"""api/floor.py on SQLite and PostgreSQL: one alert's claim/note/resolve trail and a conversation's alerts
with their notes, both scope-checked like the other alert routes."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI

from api import floor, store_errors
from api.auth import Auth
from tests.factories import alert
from zhijian.store.database import Database

ADMIN_TOKEN = "admin-token-for-the-floor-test"
T0 = 1_795_000_000_000


class Client:
    """The router in process, over ASGI (no server, no broker)."""

    def __init__(self, store: Database) -> None:
        self.app = FastAPI()
        store_errors.install(self.app)  # as create_app does
        self.app.include_router(floor.router(store, Auth(store, ADMIN_TOKEN)))

    def get(self, path: str, token: str | None) -> tuple[int, Any]:
        async def call() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://floor") as c:
                return await c.get(path, headers={"Authorization": f"Bearer {token}"} if token else {})
        response = asyncio.run(call())
        return response.status_code, response.json()


def session(store: Database, username: str, team: str) -> tuple[str, Any]:
    store.users.add(username, f"{username}-password", role="floor_lead", team_id=team)
    result = store.sessions.login(username, f"{username}-password")
    assert result is not None
    return result


def get(client: Client, path: str, token: str | None) -> tuple[int, Any]:
    return client.get(path, token)


def test_an_alerts_trail_and_a_conversations_notes_within_the_scope(store: Database) -> None:
    store.alerts.save([alert("a1", T0, team_id="A", conversation_id="c1"),
                       alert("a2", T0 + 1, team_id="A", conversation_id="c1", rule="impolite_address"),
                       alert("b1", T0 + 2, team_id="B", conversation_id="c2")])
    token_a, lead_a = session(store, "lead-a", "A")
    token_b, _ = session(store, "lead-b", "B")
    store.claims.act("a1", lead_a, "claim", "马上处理")
    store.claims.act("a1", lead_a, "note", "已提醒坐席注意用语")
    store.claims.act("a1", lead_a, "resolved", "")
    client = Client(store)

    status, body = get(client, "/api/alerts/a1/actions", token_a)
    assert status == 200
    assert body["action"]["state"] == "resolved"
    assert [n["text"] for n in body["action"]["notes"]] == ["马上处理", "已提醒坐席注意用语"]
    assert [(e["action"], e["by"], e["note"]) for e in body["trail"]] == [
        ("claim", "lead-a", "马上处理"), ("note", "lead-a", "已提醒坐席注意用语"), ("resolved", "lead-a", "")]
    assert get(client, "/api/alerts/a1/actions", token_b)[0] == 404  # another team's: "not found"
    assert get(client, "/api/alerts/nope/actions", ADMIN_TOKEN)[0] == 404
    assert get(client, "/api/alerts/a1/actions", None)[0] == 401

    status, body = get(client, "/api/conversations/c1/alerts", token_a)
    assert status == 200
    by_id = {a["alert_id"]: a for a in body["alerts"]}
    assert sorted(by_id) == ["a1", "a2"] and "action" not in by_id["a2"]
    assert by_id["a1"]["action"]["notes"][1]["text"] == "已提醒坐席注意用语"
    assert get(client, "/api/conversations/c1/alerts", token_b)[1]["alerts"] == []  # out of scope: nothing
    assert [a["alert_id"] for a in get(client, "/api/conversations/c2/alerts", ADMIN_TOKEN)[1]["alerts"]] == ["b1"]
