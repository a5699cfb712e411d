"""``zhijian up``: broker, worker, API (and simulator) as supervised child processes.

Children are started in their own sessions (so a terminal's Ctrl-C reaches only this
supervisor, which then stops them in order: simulator, API, worker, broker) and with
``PR_SET_PDEATHSIG`` (so they die with it even if it is killed with SIGKILL). A child that
exits unexpectedly is started again after a back-off (1 s, doubling to 30 s; reset once it has
run for a minute), and the supervisor says so; the rest of the stack keeps running. A restarted
embedded broker comes back empty (it keeps nothing on disk): it recreates the topics, and the
worker, on rejoining, sees the consumer group reset and rebuilds its tables from SQL
(``stream.engine.rebuild``: open conversations and the tallies). A killed ``zhijian broker`` takes its
Tansu process along (no orphan keeps the port).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from zhijian.core import redaction
from zhijian.core.process import die_with_parent
from zhijian.core.settings import Settings
from zhijian.kafka.broker import port_open

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
STABLE_AFTER_S = 60.0  # a child that ran this long starts its back-off from the beginning again


@dataclass
class Child:
    name: str
    args: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    log_file: IO[bytes] | None = field(default=None, repr=False)
    started_at: float = 0.0
    restarts: int = 0
    backoff_s: float = BACKOFF_FIRST_S
    restart_at: float | None = None  # when a dead child is due to start again

    def start(self, env: dict[str, str]) -> None:
        self.started_at = time.monotonic()
        self.restart_at = None
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.log_file is not None:  # a restart: the previous run's handle
            self.log_file.close()
        self.log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "zhijian", *self.args],
            stdout=self.log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, start_new_session=True, preexec_fn=die_with_parent,
        )

    @property
    def state(self) -> str:
        if self.process is None:
            return "not started"
        code = self.process.poll()
        return "running" if code is None else f"exited ({code})"

    def stop(self, timeout_s: float = 15.0) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None


def _proc_kb(path: str, field_name: str) -> int:
    """A "<field>: <n> kB" value from a /proc file (0 if unreadable: not Linux, process gone)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field_name):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class StackStopped(Exception):
    pass


class Stack:
    def __init__(self, settings: Settings, token: str) -> None:
        self.settings = settings
        self.token = token
        self.children: list[Child] = []
        self.stopping = False
        self.memory_warned = 0
        self.env = {**os.environ, "ZHIJIAN_ADMIN_TOKEN": token, "PYTHONUNBUFFERED": "1"}

    def log_path(self, name: str) -> Path:
        return self.settings.data_dir / "logs" / f"{name}.log"

    def spawn(self, name: str, *args: str) -> Child:
        child = Child(name, list(args), self.log_path(name))
        child.start(self.env)
        self.children.append(child)
        print(f"  {name:<10} started  pid {child.process.pid if child.process else '?'}  log {child.log_path}",
              flush=True)
        return child

    def wait_until(self, what: str, ready: object, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():  # type: ignore[operator]
            self.check_children()
            if time.monotonic() > deadline:
                raise StackStopped(f"{what} not ready after {timeout_s:.0f} s")
            time.sleep(0.2)

    def check_children(self) -> None:
        """During start-up: a child that dies stops the start (something is wrong with the set-up)."""
        if self.stopping:
            raise StackStopped("stopping")
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                raise StackStopped(f"{child.name} {child.state}; see {child.log_path}")

    def watch_broker_memory(self) -> None:
        """The embedded broker keeps every record in memory and never frees it (no retention in this build):
        warn once at half of the machine's memory and again when less than a tenth is left."""
        broker = next((c for c in self.children if c.name == "broker" and c.process is not None), None)
        if broker is None or broker.process is None or broker.process.poll() is not None:
            return
        rss_kb = _proc_kb(f"/proc/{broker.process.pid}/status", "VmRSS:")
        total_kb, available_kb = _proc_kb("/proc/meminfo", "MemTotal:"), _proc_kb("/proc/meminfo", "MemAvailable:")
        if not rss_kb or not total_kb:
            return
        level = 2 if available_kb < total_kb / 10 else 1 if rss_kb > total_kb / 2 else 0
        if level > self.memory_warned:
            self.memory_warned = level
            print(f"zhijian: WARNING the embedded broker holds {rss_kb / 1024:.0f} MiB of records in memory "
                  f"({available_kb / 1024:.0f} MiB of {total_kb / 1024:.0f} MiB still free); it keeps everything "
                  f"until it is restarted, which loses what is not yet in SQL. For a real floor run Apache Kafka "
                  f"(deploy/) and set KAFKA_BROKER.", file=sys.stderr, flush=True)

    def supervise(self) -> None:
        """Once running: restart any child that died, after its back-off, and say so."""
        if self.stopping:
            raise StackStopped("stopping")
        now = time.monotonic()
        for child in self.children:
            if child.process is None or child.process.poll() is None:
                continue
            if child.restart_at is None:
                ran = now - child.started_at
                if ran >= STABLE_AFTER_S:
                    child.backoff_s = BACKOFF_FIRST_S
                child.restart_at = now + child.backoff_s
                print(f"zhijian: {child.name} {child.state} after {ran:.0f} s; restarting in {child.backoff_s:.0f} s "
                      f"(see {child.log_path})", file=sys.stderr, flush=True)
                child.backoff_s = min(child.backoff_s * 2, BACKOFF_MAX_S)
            elif now >= child.restart_at:
                child.restarts += 1
                child.start(self.env)
                print(f"zhijian: {child.name} restarted (pid {child.process.pid if child.process else '?'}, "
                      f"restart #{child.restarts})", flush=True)

    def http_ok(self, url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop_all(self) -> None:
        for child in reversed(self.children):
            if child.process is not None and child.process.poll() is None:
                print(f"  stopping {child.name}…", flush=True)
            child.stop()

    def status(self) -> str:
        return "\n".join(f"  {c.name:<10} {c.state}" for c in self.children)


def run_stack(settings: Settings, *, demo: bool, rate: float) -> int:
    token = settings.admin_token or secrets.token_urlsafe(24)
    redaction.add_secret(token)  # printed once for the operator below, never logged
    stack = Stack(settings, token)

    def on_signal(signum: int, _frame: object) -> None:
        stack.stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    host, _, port = settings.bootstrap_servers.split(",")[0].rpartition(":")
    local_broker = host in ("127.0.0.1", "localhost") and not port_open(host, int(port))
    api_url = f"http://{settings.api_host}:{settings.api_port}"
    print("zhijian: starting the stack", flush=True)
    try:
        if local_broker:
            broker = stack.spawn("broker", "broker")
            stack.wait_until("broker", lambda: broker.log_path.exists()
                             and b"broker ready" in broker.log_path.read_bytes(), 30)
        else:
            print(f"  using the broker at {settings.bootstrap_servers}", flush=True)
            topics = subprocess.run([sys.executable, "-m", "zhijian", "topics"], env=stack.env, check=False)
            if topics.returncode != 0:
                raise StackStopped("could not create topics on the broker")
        stack.spawn("worker", "worker")
        stack.spawn("api", "api")
        stack.spawn("notify", "notify")  # pushes and escalations ([notify] in the rule set), its own process
        stack.wait_until("stack", lambda: stack.http_ok(f"{api_url}/healthz"), 90)
        if demo:
            stack.spawn("simulator", "simulate", "--rate", str(rate))
        print(f"\nzhijian is up.\n  dashboard: {api_url}/\n  token:     {token}\n"
              f"  direct:    {api_url}/#token={token}\n"
              f"  (open the direct link as admin; add users with `zhijian user add NAME --role ROLE`;\n"
              f"   Ctrl-C stops everything)\n{stack.status()}\n",
              flush=True)
        ticks = 0
        while True:
            stack.supervise()
            ticks += 1
            if ticks % 60 == 0:  # every 30 s
                stack.watch_broker_memory()
            time.sleep(0.5)
    except StackStopped as reason:
        if not stack.stopping:
            print(f"zhijian: {reason}", file=sys.stderr, flush=True)
            return 1
        return 0
    finally:
        stack.stop_all()
        print("zhijian: stopped", flush=True)
