"""Real processes for integration tests: broker, worker and API, each test run apart
by its own topic prefix, Faust app id, ports and database file."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zhijian.core.settings import Settings
from zhijian.kafka.broker import EmbeddedBroker, ensure_topics, free_port

ROOT = Path(__file__).resolve().parents[2]


def stack_env(bootstrap: str, workdir: Path, *, name: str = "") -> dict[str, str]:
    tag = f"{name or 'it'}{uuid.uuid4().hex[:8]}"
    return {
        **os.environ,
        "KAFKA_BROKER": bootstrap,
        "ZHIJIAN_TOPIC_PREFIX": f"{tag}.",
        "ZHIJIAN_APP_ID": f"zhijian-{tag}",
        "ZHIJIAN_PARTITIONS": "4",
        "ZHIJIAN_DATA_DIR": str(workdir),
        "DATABASE_URL": f"sqlite:///{workdir / 'zhijian.db'}",
        "ZHIJIAN_WORKER_PORT": str(free_port()),
        "ZHIJIAN_API_PORT": str(free_port()),
        "ZHIJIAN_NOTIFY_PORT": str(free_port()),
        "ZHIJIAN_ADMIN_TOKEN": f"token-{uuid.uuid4().hex}",
        "PYTHONUNBUFFERED": "1",
    }


def settings_for(env: dict[str, str]) -> Settings:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return Settings.from_env()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def http_json(url: str, token: str | None = None, timeout: float = 3.0) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:  # closes the connection now, not when the garbage collector finds it (a ResourceWarning)
            return exc.code, json.loads(exc.read() or b"null")


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:  # keep polling; report the last error on timeout
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last error: {last_error})")


class Proc:
    """A ``python -m zhijian <command>`` child with its log in the work directory."""

    def __init__(self, command: str, env: dict[str, str], workdir: Path, label: str | None = None) -> None:
        self.command = command
        self.label = label or command
        self.log_path = workdir / f"{self.label}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "zhijian", command], cwd=ROOT, env=env,
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def assert_running(self) -> None:
        code = self.process.poll()
        assert code is None, f"{self.label} exited with {code}:\n{self.log()}"

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


def start_worker(env: dict[str, str], workdir: Path, label: str = "worker") -> Proc:
    worker = Proc("worker", env, workdir, label)
    url = f"http://127.0.0.1:{env['ZHIJIAN_WORKER_PORT']}/zhijian/health/"

    def ready() -> bool:
        worker.assert_running()
        status, body = http_json(url)
        return status == 200 and not body["rebalancing"] and bool(body["assignment"])

    try:
        wait_for(ready, 60, f"{label} to join its group")
    except AssertionError:
        worker.stop()
        raise AssertionError(f"{label} did not become ready:\n{worker.log()}") from None
    return worker


def start_api(env: dict[str, str], workdir: Path) -> Proc:
    api = Proc("api", env, workdir)
    url = f"http://127.0.0.1:{env['ZHIJIAN_API_PORT']}/healthz"

    def ready() -> bool:
        api.assert_running()
        return http_json(url)[0] == 200

    try:
        wait_for(ready, 60, "API health")
    except AssertionError:
        api.stop()
        raise AssertionError(f"API did not become healthy:\n{api.log()}") from None
    return api


def send_json(method: str, url: str, token: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=json.dumps(body, ensure_ascii=False).encode(), method=method,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        with exc:  # closes the connection now, not when the garbage collector finds it (a ResourceWarning)
            return exc.code, json.loads(exc.read() or b"null")


def ws_url(api_port: int, path: str, token: str, **query: str) -> str:
    """A WebSocket URL signed in with a fresh one-time ticket (``POST /api/ws-ticket``)."""
    status, body = post_json(f"http://127.0.0.1:{api_port}/api/ws-ticket", token, {})
    assert status == 200, (status, body)
    params = urllib.parse.urlencode({"ticket": body["ticket"], **query})
    return f"ws://127.0.0.1:{api_port}{path}?{params}"


def put_json(url: str, token: str, body: Any) -> tuple[int, Any]:
    return send_json("PUT", url, token, body)


def post_json(url: str, token: str, body: Any) -> tuple[int, Any]:
    return send_json("POST", url, token, body)


def produce_events(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> None:
    """Produce with kafka-python (an independent client), keyed by conversation_id, in order."""
    import kafka

    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap)
    try:
        for event in events:
            producer.send(topic, key=str(event["conversation_id"]).encode(),
                          value=json.dumps(event, ensure_ascii=False).encode()).get(timeout=30)
    finally:
        producer.close()


def chat_event(mid: str, conv: str, sender: str, text: str, *, agent: str | None = "a1", team: str = "t1",
               ts_ms: int | None = None, etype: str = "message", shop: str = "shop-1") -> dict[str, Any]:
    return {
        "message_id": mid, "conversation_id": conv, "shop_id": shop, "team_id": team,
        "agent_id": agent, "customer_id": "cust-1", "sender": sender, "type": etype, "text": text,
        "ts": ts_ms if ts_ms is not None else int(time.time() * 1000),
    }


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
