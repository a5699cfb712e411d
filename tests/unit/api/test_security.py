"""WebSocket tickets, login throttling, the hashing pool, socket sign-out, security headers
and log redaction."""

from __future__ import annotations

import asyncio
import logging
import threading

import httpx
import pytest
from fastapi import FastAPI

from api.auth import TicketBook
from api.connections import Connections
from api.login_guard import LoginGuard, Throttle, TooManyAttempts
from api.security import SECURITY_HEADERS, RedactQueryStrings, SecurityHeaders
from zhijian.store.users import Principal


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_ticket_is_single_use_bound_to_its_user_and_expires() -> None:
    clock = Clock()
    book = TicketBook(ttl_s=30, clock=clock)
    lead = Principal("lead-a", "floor_lead", "A", session="s1")
    ticket = book.issue(lead)
    assert book.redeem(ticket) is lead
    assert book.redeem(ticket) is None  # spent
    late = book.issue(lead)
    clock.now += 31
    assert book.redeem(late) is None
    assert book.redeem("made-up") is None and book.redeem(None) is None
    assert book.issue(lead) != book.issue(lead)
    mine, other = book.issue(lead), book.issue(Principal("ann", "agent", agent_id="ann", session="s2"))
    admin = book.issue(Principal("admin", "admin"))
    assert book.revoke(session="s1") == 3  # logout spends the session's unused tickets ...
    assert book.redeem(mine) is None and book.redeem(other) is not None
    again = book.issue(lead)
    assert book.revoke(username="lead-a") == 1 and book.redeem(again) is None  # ... a password change the user's
    assert book.redeem(admin) is not None


def test_failed_logins_back_off_exponentially_and_success_resets() -> None:
    clock = Clock()
    throttle = Throttle(free=3, base_s=1.0, max_s=60.0, clock=clock)
    for _ in range(3):
        throttle.failed("ann")
    assert throttle.retry_after("ann") == 0  # three free failures
    waits = []
    for _ in range(8):
        throttle.failed("ann")
        waits.append(throttle.retry_after("ann"))
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]
    assert throttle.retry_after("bob") == 0  # keys are apart
    throttle.succeeded("ann")
    assert throttle.retry_after("ann") == 0


def test_the_guard_throttles_per_user_and_per_address() -> None:
    clock = Clock()
    guard = LoginGuard(user_free=3, address_free=5, clock=clock)
    try:
        for _ in range(4):
            guard.record("Ann", "10.0.0.1", ok=False)
        with pytest.raises(TooManyAttempts) as info:
            guard.check("ann", "10.0.0.2")  # the user, from anywhere, and case-insensitively
        assert info.value.retry_after_s == 1 and "try again in 1 s" in str(info.value)
        guard.check("bob", "10.0.0.1")  # four failures from the address: still free
        for name in ("c1", "c2"):
            guard.record(name, "10.0.0.1", ok=False)
        with pytest.raises(TooManyAttempts):
            guard.check("dora", "10.0.0.1")  # the address, for any user
        clock.now += 2
        guard.check("ann", "10.0.0.2")
    finally:
        guard.close()


async def test_hashing_runs_in_its_own_bounded_pool() -> None:
    guard = LoginGuard(workers=2, max_waiting=3)
    release = threading.Event()
    names: list[str] = []

    def work() -> str:
        names.append(threading.current_thread().name)
        release.wait(10)
        return "done"

    try:
        running = [asyncio.create_task(guard.run(work)) for _ in range(3)]
        await asyncio.sleep(0)
        with pytest.raises(TooManyAttempts):
            await guard.run(work)  # a fourth waits for none: refused at once
        release.set()
        assert await asyncio.gather(*running) == ["done"] * 3
        assert names and all(name.startswith("argon2") for name in names)
    finally:
        release.set()
        guard.close()


async def test_sockets_are_signed_out_by_session_by_user_and_by_the_periodic_check() -> None:
    alive = {"s1", "s2", "s3"}
    connections = Connections(lambda ids: {i for i in ids if i in alive})
    one = connections.open(Principal("lead-a", "floor_lead", "A", session="s1"))
    two = connections.open(Principal("lead-a", "floor_lead", "A", session="s2"))
    three = connections.open(Principal("ann", "agent", agent_id="ann", session="s3"))
    admin = connections.open(Principal("admin", "admin"))
    assert connections.end_session("s1") == 1 and one.signed_out.is_set() and not two.signed_out.is_set()
    assert connections.end_user("lead-a") == 2 and two.signed_out.is_set()
    alive.discard("s3")  # expired, or changed by another process
    assert await connections.check() == 1 and three.signed_out.is_set()
    assert not admin.signed_out.is_set()
    for connection in (one, two, three, admin):
        connections.close(connection)
    assert len(connections) == 0


async def test_every_response_carries_the_security_headers() -> None:
    app = FastAPI()
    app.add_middleware(SecurityHeaders)

    @app.get("/ok")
    def ok() -> dict[str, str]:
        return {"ok": "yes"}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        for path in ("/ok", "/missing"):
            response = await client.get(path)
            for name, value in SECURITY_HEADERS.items():
                assert response.headers[name] == value, (path, name)
    assert "'unsafe-inline'" not in SECURITY_HEADERS["content-security-policy"]
    assert "default-src 'self'" in SECURITY_HEADERS["content-security-policy"]


def test_query_strings_are_redacted_from_access_and_websocket_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redaction")
    logger.addFilter(RedactQueryStrings())
    with caplog.at_level(logging.INFO, logger="test.redaction"):
        logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", "/api/alerts?token=SECRET&limit=5", "1.1", 200)
        logger.info('%s - "WebSocket %s" [accepted]', "127.0.0.1:6", "/ws/alerts?ticket=T1CKET")
        logger.info("plain /ws/alerts?ticket=T2")
    text = caplog.text
    assert "SECRET" not in text and "T1CKET" not in text and "T2" not in text
    assert "/api/alerts?[redacted]" in text and "/ws/alerts?[redacted]" in text
