"""The 人工质检 screen in headless Debian Chromium: a QA reviewer works one sampled conversation to sign-off."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from playwright.sync_api import Browser, Page, expect, sync_playwright

from api import quality, review, session, store_errors
from api.auth import Auth
from api.connections import Connections
from api.login_guard import LoginGuard
from tests.conftest import missing
from tests.factories import T0, book_with_human_item, stored
from tests.integration.browser import CHROMIUM, FLAGS
from zhijian.scoring import rubric_lookup
from zhijian.store.database import Database

pytestmark = [pytest.mark.browser]
DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, str, Database]]:
    """The review API and the dashboard on a free port (no broker: the live sockets stay down)."""
    store = Database(f"sqlite:///{tmp_path}/review.db")
    store.upgrade()
    book = book_with_human_item()
    store.users.add("qa1", "pw-qa-1234", role="qa", display_name="质检员")
    store.users.add("a09", "pw-agent-1234", role="agent", agent_id="a09", team_id="t1")
    stored(store, book, "rev-1", "说了多少遍了，您自己看详情")
    day = rubric_lookup(book)("s1").day(T0)
    store.samples.save(day, [{"conversation_id": "rev-1", "agent_id": "a09", "reasons": ["random_1pct"]}])
    app = FastAPI()
    store_errors.install(app)  # as create_app does
    auth = Auth(store, "admin-token-for-browser")
    app.state.auth = auth  # api.deps finds it there
    connections = Connections(store.sessions.live)
    app.state.connections = connections
    app.include_router(session.router(store, auth, connections, LoginGuard()))
    app.include_router(quality.router(store, book, auth))
    app.include_router(review.router(store, book, auth))
    app.mount("/", StaticFiles(directory=DASHBOARD, html=True), name="dashboard")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    ready = threading.Event()
    while thread.is_alive() and not ready.wait(0.05):  # until uvicorn says it is serving
        if server.started:
            ready.set()
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}", day, store
    server.should_exit = True
    thread.join(timeout=10)
    store.dispose()


@pytest.fixture
def page() -> Iterator[Page]:
    if not Path(CHROMIUM).exists():
        missing("chromium", f"{CHROMIUM} not found (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        browser: Browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
        yield context.new_page()
        context.close()
        browser.close()


def test_a_reviewer_signs_off_a_sampled_conversation(site: tuple[str, str, Database], page: Page) -> None:
    url, day, store = site
    page.goto(url)
    page.fill("#username", "qa1")
    page.fill("#password", "pw-qa-1234")
    page.click("#login button[type=submit]")
    tab = page.locator(".tab[data-tab=review]")
    expect(tab).to_be_visible()
    tab.click()
    page.fill("#r-date", day)
    page.dispatch_event("#r-date", "change")
    row = page.locator("#review-queue tr[data-conversation=rev-1]")
    # 82: 服务态度 20 + 准确全面 pending (0) − 5 − 3, the rest full (see test_review_queue)
    expect(row).to_contain_text("82.0 分 · 待评分")
    expect(row).to_contain_text("待质检")
    row.locator("button").click()
    detail = page.locator("#review-detail")
    expect(detail.locator("#rv-score")).to_contain_text("2 个问题待确认")
    expect(detail.locator("#rv-transcript")).to_contain_text("说了多少遍了")
    findings = detail.locator("#rv-findings li")
    expect(findings).to_have_count(2)

    conflict = detail.locator("#rv-findings li", has_text="与顾客争执")
    conflict.locator("button[data-confirm=false]").click()
    expect(detail.locator("#rv-findings li", has_text="与顾客争执")).to_have_attribute("data-status", "rejected")
    detail.locator("#rv-findings li", has_text="推诿").locator("button[data-confirm=true]").click()
    expect(detail.locator("#rv-findings li", has_text="推诿")).to_have_attribute("data-status", "confirmed")
    expect(detail.locator("#rv-score")).to_contain_text("87.0 分")

    page.select_option("#rv-label", "broken_promise")
    page.select_option("#rv-message", "a2")
    page.fill("#rv-note", "答应当天发货，实际未发")
    page.click("#rv-add button[type=submit]")
    expect(detail.locator("#rv-findings li")).to_have_count(3)
    expect(detail.locator("#rv-score")).to_contain_text("77.0 分")

    page.click("#rv-signoff-button")  # 准确全面 not scored yet: refused, with the reason
    expect(detail.locator("#rv-error")).to_contain_text("准确全面")
    page.fill("input[data-item=准确全面]", "8")
    page.click("#rv-items-save")
    expect(detail.locator("#rv-score")).to_contain_text("85.0 分")
    page.fill("#rv-signoff-note", "已与坐席沟通")
    page.click("#rv-signoff-button")
    expect(detail.locator("#rv-score")).to_contain_text("已确认")
    expect(detail.locator("#rv-score")).to_contain_text("坐席可申诉至")
    expect(row).to_contain_text("已确认")
    expect(page.locator("#rv-signoff-button")).to_be_disabled()
    assert [e["action"] for e in store.audit.trail("rev-1")][-1] == "review.sign_off"


    # the agent signs in and reads the result: the same score, no review controls
    page.click("#logout")
    page.fill("#username", "a09")
    page.fill("#password", "pw-agent-1234")
    page.click("#login button[type=submit]")
    page.locator(".tab[data-tab=review]").click()
    mine = page.locator("#review-queue tr[data-conversation=rev-1]")
    expect(mine).to_contain_text("85.0 分")
    mine.locator("button").click()
    expect(page.locator("#rv-score")).to_contain_text("坐席可申诉至")
    expect(page.locator("#rv-findings")).to_contain_text("承诺未兑现")
    expect(page.locator("#rv-signoff")).to_be_hidden()
    expect(page.locator("#rv-add")).to_be_hidden()
