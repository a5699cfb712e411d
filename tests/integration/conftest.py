from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.factories import missing
from tests.integration.browser import CHROMIUM, FLAGS
from tests.integration.harness import Stack, prepare, start_api, start_worker
from zhijian.kafka.broker import EmbeddedBroker, free_port

__all__ = ["Stack", "broker", "browser", "prepare", "stack"]  # Stack and prepare live in the harness


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    embedded = EmbeddedBroker("127.0.0.1", free_port(), log_path=log)
    embedded.start()
    yield embedded
    embedded.stop()


@pytest.fixture(scope="module")
def stack(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Broker, worker and API as real processes, shared by the tests of one module."""
    workdir = tmp_path_factory.mktemp("stack")
    env, settings = prepare(broker, workdir, "stack")
    worker = start_worker(env, workdir)
    try:
        api = start_api(env, workdir)
    except BaseException:
        worker.stop()
        raise
    yield Stack(env, settings, workdir, worker, api)
    api.stop()
    worker.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        missing("chromium", f"{CHROMIUM} not found (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield instance
        instance.close()
