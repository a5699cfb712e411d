"""The supervisor page in headless Debian Chromium, driven by Playwright."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import missing
from tests.integration.conftest import Stack
from tests.integration.harness import chat_event

pytestmark = [pytest.mark.broker, pytest.mark.browser]
CHROMIUM = os.environ.get("ZHIJIAN_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        missing("chromium", f"{CHROMIUM} not found (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    yield context.new_page()
    context.close()


async def produce(stack: Stack, events: list[dict[str, object]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.bootstrap_servers)
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(stack.settings.topics.messages,
                                         json.dumps(event, ensure_ascii=False).encode(),
                                         key=str(event["conversation_id"]).encode())
    finally:
        await producer.stop()


def test_a_live_alert_appears_with_its_words_highlighted(stack: Stack, page: Page) -> None:
    page.goto(f"{stack.api_url}/")
    page.fill("#token", stack.token)
    page.click("button[type=submit]")
    expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=15_000)

    conv = f"conv-{uuid.uuid4().hex[:8]}"
    message_id = uuid.uuid4().hex
    events = [chat_event(f"{message_id}-q", conv, "customer", "在吗"),
              chat_event(message_id, conv, "agent", "嗯嗯，你自己去看吧", agent="agent-9")]
    # Playwright's sync API owns this thread's event loop: produce from another thread.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, produce(stack, events)).result(timeout=30)
    # 嗯嗯 (banned word), 你 (impolite address), 你自己去看 (deflection): one row each
    rows = page.locator("#alerts tr", has_text=conv)
    expect(rows).to_have_count(3, timeout=20_000)
    row = rows.filter(has_text="禁忌用词")
    expect(row).to_have_count(1)
    expect(row.locator("mark")).to_have_text("嗯嗯")
    expect(rows.filter(has_text="推脱").locator("mark")).to_have_text("你自己去看")
    expect(row).to_contain_text("agent-9")
    expect(row).to_contain_text("严重")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-live-alert.png"))

    # After a reload the alert comes back from the database (written by the worker's
    # persist agent, which lags the live feed by a few seconds), not duplicated.
    page.wait_for_timeout(500)
    page.reload()
    expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=15_000)
    expect(page.locator("#login")).to_be_hidden()
    for _attempt in range(6):
        if page.locator("#alerts tr", has_text=conv).count() == 3:
            break
        page.wait_for_timeout(5000)
        page.reload()
    expect(page.locator("#alerts tr", has_text=conv)).to_have_count(3, timeout=10_000)


def test_a_wrong_token_is_refused_on_the_page(stack: Stack, page: Page) -> None:
    page.goto(f"{stack.api_url}/")
    page.fill("#token", "not-the-token")
    page.click("button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("令牌无效", timeout=10_000)
    expect(page.locator("#wall")).to_be_hidden()


def test_the_waiting_board_and_the_waiting_alert_follow_the_conversation(stack: Stack, page: Page) -> None:
    page.goto(f"{stack.api_url}/")
    page.fill("#token", stack.token)
    page.click("button[type=submit]")
    expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=15_000)

    conv = f"wait-{uuid.uuid4().hex[:8]}"
    now = int(time.time() * 1000)
    # the customer has waited 35 s: past the board (15 s) and the warning (30 s) thresholds
    events = [chat_event(f"{conv}-c1", conv, "customer", "在吗？急", agent=None, ts_ms=now - 35_000)]
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, produce(stack, events)).result(timeout=30)
    item = page.locator(f'#waiting li[data-conversation-id="{conv}"]')
    expect(item).to_be_visible(timeout=15_000)
    expect(item).to_have_attribute("data-level", "1")
    alert_row = page.locator("#alerts tr", has_text=conv).filter(has_text="顾客等待")
    expect(alert_row).to_have_count(1, timeout=15_000)
    expect(alert_row).to_have_attribute("data-state", "open")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-waiting-board.png"))

    answer = [chat_event(f"{conv}-a1", conv, "agent", "抱歉久等了，马上为您处理", agent="agent-3")]
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, produce(stack, answer)).result(timeout=30)
    expect(item).to_have_count(0, timeout=15_000)
    # the same row, now answered: one row per waiting episode, never a second one
    expect(alert_row).to_have_attribute("data-state", "cleared", timeout=15_000)
    expect(page.locator("#alerts tr", has_text=conv).filter(has_text="顾客等待")).to_have_count(1)
