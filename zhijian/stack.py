"""``zhijian up``: broker, worker, API (and simulator) as supervised child processes.

Children are started in their own sessions (so a terminal's Ctrl-C reaches only this
supervisor, which then stops them in order: simulator, API, worker, broker) and with
``PR_SET_PDEATHSIG`` (so they die with it even if it is killed with SIGKILL). If any
child exits unexpectedly, the whole stack is stopped and the exit is non-zero.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from api.auth import new_token
from zhijian.broker import port_open
from zhijian.settings import Settings

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: orderly shutdown still applies


@dataclass
class Child:
    name: str
    args: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    log_file: IO[bytes] | None = field(default=None, repr=False)

    def start(self, env: dict[str, str]) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "zhijian", *self.args],
            stdout=self.log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, start_new_session=True, preexec_fn=_die_with_parent,
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


class StackStopped(Exception):
    pass


class Stack:
    def __init__(self, settings: Settings, token: str) -> None:
        self.settings = settings
        self.token = token
        self.children: list[Child] = []
        self.stopping = False
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
        if self.stopping:
            raise StackStopped("stopping")
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                raise StackStopped(f"{child.name} {child.state}; see {child.log_path}")

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
    token = settings.admin_token or new_token()
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
        stack.wait_until("stack", lambda: stack.http_ok(f"{api_url}/healthz"), 90)
        if demo:
            stack.spawn("simulator", "simulate", "--rate", str(rate))
        print(f"\nzhijian is up.\n  dashboard: {api_url}/\n  token:     {token}\n"
              f"  direct:    {api_url}/#token={token}\n"
              f"  (open the direct link as admin; add users with `zhijian user add NAME --role ROLE`;\n"
              f"   Ctrl-C stops everything)\n{stack.status()}\n",
              flush=True)
        while True:
            stack.check_children()
            time.sleep(0.5)
    except StackStopped as reason:
        if not stack.stopping:
            print(f"zhijian: {reason}", file=sys.stderr, flush=True)
            return 1
        return 0
    finally:
        stack.stop_all()
        print("zhijian: stopped", flush=True)
