"""Sessions on real processes: sockets close (4401) on logout, expiry, password change and
disable; login throttling; the tally in scope; security headers; no credentials in the logs;
ids escaped on their way to the worker."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import urllib.request
import uuid
from typing import Any

import pytest
import websockets

from tests.integration.harness import (
    Stack,
    chat_event,
    http_json,
    post_json,
    produce_events,
    send_json,
    wait_for,
    ws_url,
)

pytestmark = pytest.mark.broker
SIGNED_OUT = 4401


def sign_in(stack: Stack, username: str, role: str, **extra: str) -> str:
    password = f"{username}-password"
    status, _ = post_json(f"{stack.api_url}/api/users",  stack.token,
                          {"username": username, "password": password, "role": role, **extra})
    assert status in (201, 409)
    status, body = post_json(f"{stack.api_url}/api/login", "", {"username": username, "password": password})
    assert status == 200, body
    return str(body["token"])


async def close_code_after(url: str, action: Any, timeout_s: float = 15.0) -> int | None:
    """Open the socket, see it ready and its first heartbeat, run ``action``, return the close code."""
    async with websockets.connect(url) as socket:
        assert json.loads(await asyncio.wait_for(socket.recv(), 10))["kind"] == "ready"
        beat = json.loads(await asyncio.wait_for(socket.recv(), 10))  # within 5 s
        assert beat["kind"] == "heartbeat" and beat["feed"] == "ok" and beat["cursor"].isdigit(), beat
        await asyncio.to_thread(action)
        try:
            while True:
                await asyncio.wait_for(socket.recv(), timeout_s)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None


@pytest.mark.parametrize("how", ["logout", "password", "disable", "expiry"])
def test_a_socket_closes_when_its_session_ends(stack: Stack, how: str) -> None:
    username = f"lead-{how}-{uuid.uuid4().hex[:4]}"
    token = sign_in(stack, username, "floor_lead", team_id="team-s")
    url = ws_url(stack.settings.api_port, "/ws/alerts", token)

    def end() -> None:
        if how == "logout":
            assert post_json(f"{stack.api_url}/api/logout", token, {})[0] == 204
        elif how == "password":
            assert send_json("PATCH", f"{stack.api_url}/api/users/{username}", stack.token,
                             {"password": "a-brand-new-secret"})[0] == 200
        elif how == "disable":
            assert send_json("PATCH", f"{stack.api_url}/api/users/{username}", stack.token,
                             {"disabled": True})[0] == 200
        else:  # the session runs out (as after 12 h): only the periodic check can notice
            with sqlite3.connect(stack.workdir / "zhijian.db") as db:
                db.execute("UPDATE sessions SET expires_at = '2000-01-01T00:00:00+00:00' WHERE username = ?",
                           (username,))

    assert asyncio.run(close_code_after(url, end)) == SIGNED_OUT
    assert http_json(f"{stack.api_url}/api/me", token)[0] == 401


def test_failed_logins_are_throttled_with_a_clear_429(stack: Stack) -> None:
    sign_in(stack, "throttled-user", "qa")
    url = f"{stack.api_url}/api/login"
    codes = [post_json(url, "", {"username": "throttled-user", "password": f"wrong-{n}"})[0] for n in range(4)]
    assert codes == [401, 401, 401, 401]
    request = urllib.request.Request(url, method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"username": "throttled-user",
                                                      "password": "throttled-user-password"}).encode())
    try:
        urllib.request.urlopen(request, timeout=5)
        raise AssertionError("expected 429")
    except urllib.error.HTTPError as exc:
        assert exc.code == 429
        assert int(exc.headers["Retry-After"]) >= 1
        assert "too many failed sign-ins" in json.loads(exc.read())["detail"]


def test_weak_passwords_are_refused_by_the_api(stack: Stack) -> None:
    for password, code in (("12345678", 422), ("1234567890", 422), ("Password123", 422)):
        status, body = post_json(f"{stack.api_url}/api/users", stack.token,
                                 {"username": "weak", "password": password, "role": "qa"})
        assert status == code, (password, body)
        assert isinstance(body["detail"], list), body  # FastAPI's list-of-errors shape


def test_the_tally_is_narrowed_to_the_callers_scope(stack: Stack) -> None:
    tag = uuid.uuid4().hex[:6]
    events = [chat_event(f"t-{tag}-{team}", f"t-{tag}-{team}", "agent", "您好，请问有什么可以帮您",
                         agent=f"agent-{team}-{tag}", team=f"team-{team}-{tag}") for team in ("p", "q")]
    produce_events(stack.settings.bootstrap_servers, stack.settings.topics.messages, events)

    def agents(token: str) -> set[str]:
        status, body = http_json(f"{stack.api_url}/api/tally", token)
        assert status == 200, body
        return {a for a in body["agents"] if a.endswith(tag)}

    wait_for(lambda: len(agents(stack.token)) == 2, 30, "both agents in the tally")
    lead = sign_in(stack, f"lead-p-{tag}", "floor_lead", team_id=f"team-p-{tag}")
    agent = sign_in(stack, f"agent-q-{tag}", "agent", team_id=f"team-q-{tag}")
    assert agents(lead) == {f"agent-p-{tag}"}
    assert agents(agent) == {f"agent-q-{tag}"}


def test_security_headers_everywhere_and_no_credentials_in_the_log(stack: Stack) -> None:
    for path in ("/", "/api/me", "/api/nothing-here", "/healthz"):
        request = urllib.request.Request(f"{stack.api_url}{path}", headers={"Authorization": f"Bearer {stack.token}"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                headers = response.headers
        except urllib.error.HTTPError as exc:
            headers = exc.headers
        assert headers["X-Frame-Options"] == "DENY", path
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert "default-src 'self'" in headers["Content-Security-Policy"]
    url = ws_url(stack.settings.api_port, "/ws/alerts", stack.token)
    ticket = url.split("ticket=")[1]

    async def open_once() -> None:
        async with websockets.connect(url) as socket:
            await asyncio.wait_for(socket.recv(), 10)
    asyncio.run(open_once())
    http_json(f"{stack.api_url}/api/alerts?limit=1&token={stack.token}")
    log = stack.api.log_path.read_text(errors="replace")
    wait_for(lambda: "/ws/alerts?[redacted]" in stack.api.log_path.read_text(errors="replace"), 5, "the log line")
    log = stack.api.log_path.read_text(errors="replace")
    assert ticket not in log and stack.token not in log
    assert "/api/alerts?[redacted]" in log


def test_ids_are_escaped_for_the_worker_and_control_characters_refused(stack: Stack) -> None:
    status, body = http_json(f"{stack.api_url}/api/conversations/%3F", stack.token)
    assert (status, body) == (404, {"detail": "not found"})  # not the worker's whole live list
    status, _ = http_json(f"{stack.api_url}/api/conversations/a%01b", stack.token)
    assert status == 422
    lead = sign_in(stack, "lead-404", "floor_lead", team_id="team-none")
    assert http_json(f"{stack.api_url}/api/conversations/no-such-thing", lead) == (404, {"detail": "not found"})
