"""Role and team scope enforced by the API on every request and every pushed message."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
import websockets

from tests.integration.harness import Stack, chat_event, http_json, post_json, produce_events, wait_for, ws_url

pytestmark = pytest.mark.broker


def post(stack: Stack, path: str, body: Any, token: str) -> tuple[int, Any]:
    return post_json(f"{stack.api_url}{path}", token, body)


def login(stack: Stack, username: str, role: str, **extra: str) -> str:
    password = f"{username}-password"
    status, _ = post(stack, "/api/users", {"username": username, "password": password, "role": role, **extra},
                     stack.token)
    assert status in (201, 409)
    status, body = post(stack, "/api/login", {"username": username, "password": password}, "")
    assert status == 200, body
    return str(body["token"])


async def collect(url: str, seconds: float, ready: asyncio.Event) -> list[dict[str, Any]]:
    """Every alert pushed in the next ``seconds`` (heartbeats keep the socket busy: a deadline, not
    silence); ``ready`` is set once the socket is subscribed."""
    received: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + seconds
    async with websockets.connect(url) as socket:
        try:
            while True:
                remaining = deadline - asyncio.get_running_loop().time()
                frame = json.loads(await asyncio.wait_for(socket.recv(), max(remaining, 0.001)))
                if frame.get("kind") == "ready":
                    ready.set()
                elif "kind" not in frame:  # alerts only: no heartbeat, ready or action frames
                    received.append(frame)
        except TimeoutError:
            return received


def test_scope_and_permissions_on_rest_and_websocket(stack: Stack) -> None:
    lead = login(stack, "lead-x", "floor_lead", team_id="team-x")
    agent = login(stack, "agent-x1", "agent", team_id="team-x")
    qa = login(stack, "qa-1", "qa")
    tag = uuid.uuid4().hex[:6]
    conv_x1, conv_x2, conv_y = f"x1-{tag}", f"x2-{tag}", f"y-{tag}"
    events = [chat_event(f"{conv_y}-m", conv_y, "agent", "爱买不买", agent="agent-y1", team="team-y"),
              chat_event(f"{conv_x2}-m", conv_x2, "agent", "爱买不买", agent="agent-x2", team="team-x"),
              chat_event(f"{conv_x1}-m", conv_x1, "agent", "爱买不买", agent="agent-x1", team="team-x")]

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        port = stack.settings.api_port
        ready = [asyncio.Event(), asyncio.Event()]
        lead_feed = asyncio.create_task(collect(ws_url(port, "/ws/alerts", lead), 12, ready[0]))
        agent_feed = asyncio.create_task(collect(ws_url(port, "/ws/alerts", agent), 12, ready[1]))
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 10)  # both subscribed
        await asyncio.to_thread(produce_events, stack.settings.bootstrap_servers, stack.settings.topics.messages,
                                events)
        return await lead_feed, await agent_feed

    lead_pushed, agent_pushed = asyncio.run(scenario())
    assert {a["conversation_id"] for a in lead_pushed} == {conv_x1, conv_x2}
    assert {a["conversation_id"] for a in agent_pushed} == {conv_x1}

    def mine(token: str) -> set[str]:
        _status, body = http_json(f"{stack.api_url}/api/alerts?limit=500", token)
        return {a["conversation_id"] for a in body["alerts"] if a["conversation_id"].endswith(tag)}

    wait_for(lambda: mine(stack.token) == {conv_x1, conv_x2, conv_y}, 20, "all three alerts stored")
    assert mine(lead) == {conv_x1, conv_x2} and mine(agent) == {conv_x1} and mine(qa) == {conv_x1, conv_x2, conv_y}
    for token, conv, expected in ((lead, conv_y, 404), (agent, conv_x2, 404), (lead, conv_x1, 200)):
        status, _ = http_json(f"{stack.api_url}/api/conversations/{conv}", token)
        assert status == expected, (conv, status)

    alert_y = next(a for a in http_json(f"{stack.api_url}/api/alerts?limit=500", stack.token)[1]["alerts"]
                   if a["conversation_id"] == conv_y)
    assert post(stack, f"/api/alerts/{alert_y['alert_id']}/claim", {}, lead)[0] == 404  # another team's alert
    assert post(stack, f"/api/alerts/{alert_y['alert_id']}/claim", {}, agent)[0] == 403  # agents do not claim
    assert post(stack, f"/api/alerts/{alert_y['alert_id']}/claim", {}, qa)[0] == 403
    status, me = http_json(f"{stack.api_url}/api/me", agent)
    assert status == 200 and me["agent_id"] == "agent-x1" and "appeal" in me["permissions"]
    assert http_json(f"{stack.api_url}/api/users", lead)[0] == 403
    assert http_json(f"{stack.api_url}/api/audit", agent)[0] == 403
