"""Processes for the benchmark: an embedded broker, workers and API, each run on its own topics,
app id, ports and database (the test suite has its own harness; nothing here imports tests)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import httpx

from zhijian.core.settings import Settings
from zhijian.kafka.broker import ensure_topics, free_port

ROOT = Path(__file__).resolve().parents[1]


def environment(bootstrap: str, workdir: Path, name: str) -> dict[str, str]:
    tag = f"{name}{uuid.uuid4().hex[:6]}"
    return {**os.environ, "KAFKA_BROKER": bootstrap, "ZHIJIAN_TOPIC_PREFIX": f"{tag}.",
            "ZHIJIAN_APP_ID": f"bench-{tag}", "ZHIJIAN_PARTITIONS": "4", "ZHIJIAN_DATA_DIR": str(workdir / tag),
            "DATABASE_URL": f"sqlite:///{workdir / tag / 'zhijian.db'}", "ZHIJIAN_WORKER_PORT": str(free_port()),
            "ZHIJIAN_API_PORT": str(free_port()), "ZHIJIAN_ADMIN_TOKEN": f"bench-{uuid.uuid4().hex}",
            "PYTHONUNBUFFERED": "1"}


def settings(env: dict[str, str]) -> Settings:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return Settings.from_env()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def create_topics(env: dict[str, str]) -> Settings:
    s = settings(env)
    asyncio.run(ensure_topics(s.bootstrap_servers, s.topics.all(), partitions=s.partitions,
                              compacted=s.topics.compacted()))
    return s


def poll(check: Callable[[], Any], timeout_s: float, what: str, every_s: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            result = check()
        except (httpx.HTTPError, KeyError, ValueError):
            result = None
        if result:
            return result
        time.sleep(every_s)
    raise TimeoutError(f"{what}: not within {timeout_s:g} s")


class Child:
    """``python -m <module> [args]`` with its output in the work directory."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_file: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=env, stdout=self.log_file,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()


def health(env: dict[str, str]) -> dict[str, Any]:
    response = httpx.get(f"http://127.0.0.1:{env['ZHIJIAN_WORKER_PORT']}/zhijian/health/", timeout=3)
    body: dict[str, Any] = response.json()
    return body


def worker(env: dict[str, str], workdir: Path, label: str, module: str = "zhijian") -> Child:
    child = Child([module, "worker"] if module == "zhijian" else [module], env, workdir / f"{label}.log")
    poll(lambda: child.process.poll() is None and not health(env).get("rebalancing"), 90, f"{label} ready")
    return child


def api(env: dict[str, str], workdir: Path, *, healthy: bool = True) -> Child:
    """The API; ``healthy``: wait until /healthz says every component (worker included) answers."""
    child = Child(["zhijian", "api"], env, workdir / "api.log")
    if healthy:
        poll(lambda: httpx.get(f"http://127.0.0.1:{env['ZHIJIAN_API_PORT']}/healthz", timeout=3).status_code == 200,
             90, "API healthy")
    return child


def socket_url(api_port: int, path: str, token: str) -> str:
    """A WebSocket URL with a one-time ticket (sockets take no bearer token in the URL)."""
    response = httpx.post(f"http://127.0.0.1:{api_port}/api/ws-ticket", headers={"Authorization": f"Bearer {token}"},
                          timeout=5)
    response.raise_for_status()
    return f"ws://127.0.0.1:{api_port}{path}?ticket={response.json()['ticket']}"
