"""What the browser tests share: Debian Chromium's path and flags, the viewports, screenshots, and producing chat
events from the Playwright thread. The ``browser`` fixture itself is in ``tests/integration/conftest.py``."""

from __future__ import annotations

import asyncio
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiokafka import AIOKafkaProducer
from playwright.sync_api import Page, expect

from tests.integration.harness import Stack

CHROMIUM = os.environ.get("ZHIJIAN_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]

DESKTOP = {"width": 1920, "height": 1080}
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


def send(stack: Stack, events: list[dict[str, object]]) -> None:
    """Produce from another thread: Playwright's sync API owns this thread's event loop."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, produce(stack, events)).result(timeout=30)


def open_with_token(page: Page, stack: Stack) -> None:
    """The operator's way in (make run prints this URL; the token is in the fragment, never sent to the server)."""
    page.goto(f"{stack.api_url}/#token={stack.token}")
    expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=15_000)


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


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
