"""Liveness in the browser: the 数据中断 banner when the API stops (and gone when it returns), actions that
fail with a Chinese message and a retry, and the client side of the live-socket protocol (tickets,
heartbeats, replay cursor, de-duplication, 4401) against a scripted socket."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Route, WebSocketRoute, expect

from tests.integration.browser import LAPTOP, PHONE, open_with_token, send, shot
from tests.integration.conftest import Stack
from tests.integration.harness import chat_event, start_api

pytestmark = [pytest.mark.broker, pytest.mark.browser]


def test_the_outage_banner_shows_while_the_api_is_down_and_actions_offer_a_retry(
        stack: Stack, browser: Browser) -> None:
    context = browser.new_context(viewport=LAPTOP, locale="zh-CN")
    restarted = None
    try:
        page = context.new_page()
        open_with_token(page, stack)
        expect(page.locator("#outage")).to_be_hidden()
        conv = f"conv-o-{uuid.uuid4().hex[:6]}"
        send(stack, [chat_event(f"{conv}-m", conv, "agent", "爱买不买", agent="agent-o", team="team-o")])
        row = page.locator("#alerts tr", has_text=conv)
        expect(row).to_have_count(1, timeout=20_000)

        stack.api.stop()
        expect(page.locator("#outage")).to_be_visible(timeout=15_000)
        expect(page.locator("#outage")).to_contain_text("数据中断")
        expect(page.locator("#status")).to_have_attribute("data-state", "interrupted")
        expect(page.locator("#status")).to_have_class("status status-down")
        row.locator("button[data-act=claim]").click()
        toast = page.locator("#toast")
        expect(toast).to_contain_text("无法连接服务器")
        expect(toast).not_to_contain_text("Failed to fetch")
        expect(toast.locator("#toast-retry")).to_be_visible()
        shot(page, "outage-1366.png")

        restarted = start_api(stack.env, stack.workdir)
        expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=30_000)
        expect(page.locator("#outage")).to_be_hidden()
        page.click("#toast-retry")  # the same claim, now that the API is back
        expect(row.locator(".state")).to_contain_text("已认领", timeout=15_000)
        expect(toast).to_be_hidden()
    finally:
        if restarted is not None:
            restarted.stop()
        context.close()


ADMIN = {"username": "admin", "role": "admin", "team_id": None, "agent_id": None, "display_name": "admin",
         "permissions": ["claim", "view"]}


def alert(alert_id: str, revision: int, state: str, severity: str = "warning") -> str:
    return json.dumps({"alert_id": alert_id, "revision": revision, "state": state, "rule": "customer_waiting",
                       "severity": severity, "fatal": False, "conversation_id": "conv-p", "shop_id": "shop-1",
                       "agent_id": "agent-p", "team_id": "team-p", "message_id": f"m-{alert_id}", "excerpt": "在吗",
                       "span": [0, 0], "ts_ms": 1_795_000_000_000, "detail": {"waited_s": 31}})


def heartbeat(cursor: str, feed: str = "ok") -> str:
    return json.dumps({"kind": "heartbeat", "ts_ms": 1_795_000_000_000, "feed": feed, "cursor": cursor})


DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"
ORIGIN = "http://zhijian.test"
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


def static(route: Route) -> None:
    """The dashboard's files from the working tree (this test needs no server: every call is scripted)."""
    path = urlsplit(route.request.url).path.lstrip("/") or "index.html"
    file = DASHBOARD / path
    if file.parent != DASHBOARD or not file.is_file():
        route.fulfill(status=404, body="not found")
        return
    route.fulfill(body=file.read_bytes(), content_type=f"{TYPES.get(file.suffix, 'text/plain')}; charset=utf-8")


def test_the_client_follows_the_socket_protocol(browser: Browser) -> None:
    """Tickets (never the token in a socket URL), ready/cursor → after=, de-dup by (alert_id, revision),
    silence for 15 s and feed "down" → 数据中断 and a reconnect, 4401 → the sign-in screen."""
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    tickets: list[str] = []
    sockets: list[WebSocketRoute] = []

    def ticket(route: Route) -> None:
        tickets.append(f"t{len(tickets) + 1}")
        route.fulfill(json={"ticket": tickets[-1], "expires_in": 30})

    def alerts_socket(ws: WebSocketRoute) -> None:
        sockets.append(ws)
        if len(sockets) == 1:  # replay (a stale revision among them), ready, then a heartbeat
            for frame in (alert("w1", 1, "open"), alert("w1", 2, "cleared"), alert("w1", 1, "open")):
                ws.send(frame)
            ws.send(json.dumps({"kind": "ready", "cursor": "c-1"}))
            ws.send(heartbeat("c-2"))
        elif len(sockets) == 2:  # resumed after c-2: what was missed (a critical one), ready, a heartbeat
            ws.send(alert("r1", 1, "open", "critical"))
            ws.send(json.dumps({"kind": "ready", "cursor": "c-3"}))
            ws.send(heartbeat("c-3"))
        else:
            ws.send(alert(f"w{len(sockets)}", 1, "open"))

    def me(route: Route) -> None:
        route.fulfill(json=ADMIN)

    def recent(route: Route) -> None:
        route.fulfill(json={"alerts": []})

    def quiet(ws: WebSocketRoute) -> None:
        ws.send(heartbeat("conv"))

    try:
        page = context.new_page()
        page.route(f"{ORIGIN}/**", static)
        page.route("**/api/me", me)
        page.route("**/api/alerts?*", recent)
        page.route("**/api/ws-ticket", ticket)
        page.route_web_socket("**/ws/alerts**", alerts_socket)
        page.route_web_socket("**/ws/conversations**", quiet)
        page.clock.install()
        page.goto(f"{ORIGIN}/#token=secret-token")
        expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=15_000)
        row = page.locator("#alerts tr[data-alert-id=w1]")
        expect(row).to_have_attribute("data-alert-state", "cleared")  # revision 2 kept, the stale 1 ignored
        expect(page.locator("#alerts tr")).to_have_count(1)
        assert "ticket=t" in sockets[0].url and "secret-token" not in sockets[0].url

        # no frame for more than 15 s: interrupted, then a reconnect after the cursor it was given last
        page.clock.run_for(16_200)
        expect(page.locator("#outage")).to_be_visible()
        expect(page.locator("#status")).to_have_text("数据中断")
        page.clock.run_for(1_000)
        expect(page.locator("#status")).to_have_attribute("data-state", "live")
        expect(page.locator("#outage")).to_be_hidden()
        assert len(sockets) == 2 and "after=c-2" in sockets[1].url and "secret-token" not in sockets[1].url
        # the replayed critical alert is on the wall, without an alarm; a live one after "ready" alarms
        expect(page.locator("#alerts tr[data-alert-id=r1]")).to_have_count(1)
        expect(page.locator("#top")).not_to_have_attribute("data-alarms", re.compile("."))
        sockets[1].send(alert("x1", 1, "open", "critical"))
        expect(page.locator("#top")).to_have_attribute("data-alarms", "1")

        # the API process has lost its Kafka feed: interrupted until a heartbeat says "ok" again
        sockets[1].send(heartbeat("c-9", feed="down"))
        expect(page.locator("#outage")).to_be_visible()
        page.clock.run_for(1_000)
        expect(page.locator("#alerts tr[data-alert-id=w3]")).to_have_count(1)  # sent on the third connection
        assert len(sockets) == 3 and "after=c-9" in sockets[2].url
        expect(page.locator("#status")).to_have_attribute("data-state", "interrupted")  # reconnected, feed still down
        sockets[2].send(heartbeat("c-10"))
        expect(page.locator("#status")).to_have_attribute("data-state", "live")
        expect(page.locator("#outage")).to_be_hidden()

        # a refused ticket (1008: expired on a slow link) is retried with a fresh one, not a sign-out
        sockets[2].close(code=1008, reason="bad ticket")
        page.clock.run_for(1_000)
        expect(page.locator("#alerts tr[data-alert-id=w4]")).to_have_count(1)  # sent on the fourth connection
        expect(page.locator("#status")).to_have_attribute("data-state", "live")
        assert "ticket=t" in sockets[3].url

        # signed out elsewhere (logout, password change, account disabled): 4401 → the sign-in screen
        sockets[3].close(code=4401, reason="session ended")
        expect(page.locator("#login")).to_be_visible()
        expect(page.locator("#login-error")).to_contain_text("登录已失效")
        shot(page, "protocol-signed-out-390.png")
    finally:
        context.close()


def test_waiting_cards_show_the_customers_words_the_shop_and_a_customer_who_may_have_left(
        browser: Browser) -> None:
    """The fields the worker's waiting-board snapshots carry (waiting_excerpt, last_customer_ms, shop_id,
    customer_gone_after_s), rendered from a scripted /ws/conversations."""
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    try:
        page = context.new_page()
        page.route(f"{ORIGIN}/**", static)
        page.route("**/api/me", lambda route: route.fulfill(json={**ADMIN, "role": "floor_lead", "team_id": "t1"}))
        page.route("**/api/alerts?*", lambda route: route.fulfill(json={"alerts": []}))
        page.route("**/api/ws-ticket", lambda route: route.fulfill(json={"ticket": "t", "expires_in": 30}))
        page.route_web_socket("**/ws/alerts**", lambda ws: None)

        def board(ws: WebSocketRoute) -> None:
            now = int(page.evaluate("Date.now()"))
            base = {"status": "waiting", "team_id": "t1", "agent_id": "a07", "version": 1, "waiting_level": 2,
                    "customer_gone_after_s": 120}
            ws.send(json.dumps({**base, "conversation_id": "conv-here", "shop_id": "shop-tmall-01",
                                "waiting_since_ms": now - 50_000, "last_customer_ms": now - 50_000,
                                "waiting_excerpt": "我的订单怎么还没发货，三天了" + "急" * 80}))
            ws.send(json.dumps({**base, "conversation_id": "conv-gone", "shop_id": "shop-jd-02",
                                "waiting_since_ms": now - 200_000, "last_customer_ms": now - 180_000,
                                "waiting_excerpt": "在吗"}))
        page.route_web_socket("**/ws/conversations**", board)
        page.goto(f"{ORIGIN}/#token=t")
        here = page.locator('#waiting li[data-conversation-id="conv-here"]')
        gone = page.locator('#waiting li[data-conversation-id="conv-gone"]')
        expect(here).to_contain_text("我的订单怎么还没发货", timeout=10_000)
        expect(here).to_contain_text("shop-tmall-01")
        expect(here.locator(".said")).to_have_text(re.compile(r"^“.{60}”$"))  # at most 60 characters
        expect(here.locator(".gone")).to_be_hidden()
        expect(gone).to_contain_text("顾客可能已离开")
        expect(gone).to_have_attribute("data-gone", "true")
        expect(page.locator("#waiting li").first).to_have_attribute("data-conversation-id", "conv-gone")  # longest
        shot(page, "waiting-cards-390.png")
    finally:
        context.close()
