from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.harness import Proc, settings_for, stack_env, start_api, start_worker
from zhijian.core.settings import Settings
from zhijian.kafka.broker import EmbeddedBroker, ensure_topics, free_port


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    embedded = EmbeddedBroker("127.0.0.1", free_port(), log_path=log)
    embedded.start()
    yield embedded
    embedded.stop()


@dataclass
class Stack:
    env: dict[str, str]
    settings: Settings
    workdir: Path
    worker: Proc
    api: Proc

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.api_port}"

    @property
    def token(self) -> str:
        return self.settings.admin_token


def prepare(broker: EmbeddedBroker, workdir: Path, name: str) -> tuple[dict[str, str], Settings]:
    env = stack_env(broker.bootstrap_servers, workdir, name=name)
    settings = settings_for(env)
    asyncio.run(ensure_topics(broker.bootstrap_servers, settings.topics.all(), partitions=settings.partitions,
                              compacted=settings.topics.compacted()))
    return env, settings


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
