"""``zhijian up`` as an operator runs it: a child that dies is restarted with a back-off and the
stack keeps serving; nothing is lost on the way (alerts of the restarted worker's conversations
arrive exactly once)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.integration.harness import ROOT, chat_event, http_json, produce_events, stack_env, wait_for
from zhijian.kafka.broker import free_port

pytestmark = pytest.mark.broker


def child_pid(output: Path, name: str) -> int:
    """The newest pid the supervisor printed for ``name``."""
    pid = None
    for line in output.read_text(errors="replace").splitlines():
        words = line.split()
        if words[:2] == [name, "started"] and "pid" in words:
            pid = int(words[words.index("pid") + 1])
        elif line.startswith(f"zhijian: {name} restarted (pid "):
            pid = int(line.split("(pid ")[1].split(",")[0])
    assert pid is not None, output.read_text()
    return pid


def children(pid: int) -> list[int]:
    """The pids of a process's children (Linux)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def tally(worker_url: str, agent: str = "a1") -> dict[str, int] | None:
    status, body = http_json(f"{worker_url}/zhijian/tally/")
    row = body.get("agents", {}).get(agent) if status == 200 else None
    return {"messages": row["messages"], "findings": row["findings"]} if row else None


def test_a_dead_worker_and_api_are_restarted_and_the_stack_keeps_its_alerts(tmp_path: Path) -> None:
    broker_port = free_port()
    env = stack_env(f"127.0.0.1:{broker_port}", tmp_path, name="up")
    output = tmp_path / "up.out"
    with output.open("wb") as out:
        up = subprocess.Popen([sys.executable, "-m", "zhijian", "up"], cwd=ROOT, env=env, stdout=out,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    api = f"http://127.0.0.1:{env['ZHIJIAN_API_PORT']}"
    token = env["ZHIJIAN_ADMIN_TOKEN"]
    try:
        wait_for(lambda: "zhijian is up" in output.read_text(errors="replace"), 120, "the stack to come up")
        bootstrap, topic = f"127.0.0.1:{broker_port}", f"{env['ZHIJIAN_TOPIC_PREFIX']}chat.messages"

        def alerts_for(prefix: str) -> list[str]:
            status, body = http_json(f"{api}/api/alerts?limit=500", token)
            return [a["message_id"] for a in body["alerts"] if a["message_id"].startswith(prefix)] \
                if status == 200 else []

        first = f"before-{uuid.uuid4().hex[:6]}"
        produce_events(bootstrap, topic, [chat_event(f"{first}-{i}", f"{first}-{i}", "agent", "哦，好的")
                                          for i in range(5)])
        wait_for(lambda: len(alerts_for(first)) == 5, 60, "alerts before the crash")

        os.kill(child_pid(output, "worker"), signal.SIGKILL)
        # while the worker is down, events keep coming; the restarted worker must alert on each once
        during = f"during-{uuid.uuid4().hex[:6]}"
        produce_events(bootstrap, topic, [chat_event(f"{during}-{i}", f"{during}-{i}", "agent", "哦，好的")
                                          for i in range(5)])
        wait_for(lambda: "zhijian: worker restarted" in output.read_text(errors="replace"), 60,
                 "the supervisor to restart the worker")
        wait_for(lambda: sorted(alerts_for(during)) == sorted(f"{during}-{i}" for i in range(5)), 90,
                 "the alerts produced while the worker was down")

        os.kill(child_pid(output, "api"), signal.SIGKILL)
        wait_for(lambda: "zhijian: api restarted" in output.read_text(errors="replace"), 60,
                 "the supervisor to restart the API")
        wait_for(lambda: http_json(f"{api}/healthz")[0] == 200, 90, "the API healthy again")
        assert sorted(alerts_for(first)) == sorted(f"{first}-{i}" for i in range(5))  # exactly once each
        assert up.poll() is None, "the supervisor itself must keep running"
        text = output.read_text(errors="replace")
        assert "restarting in 1 s" in text

        # the broker dies (the embedded one keeps nothing: every topic, changelog and offset is gone)
        worker_url = f"http://127.0.0.1:{env['ZHIJIAN_WORKER_PORT']}"
        assert tally(worker_url) == {"messages": 10, "findings": 10}
        tansu = children(child_pid(output, "broker"))
        assert len(tansu) == 1, tansu
        os.kill(tansu[0], signal.SIGKILL)
        wait_for(lambda: "zhijian: broker restarted" in output.read_text(errors="replace"), 60,
                 "the supervisor to restart the broker")
        broker_log = Path(env["ZHIJIAN_DATA_DIR"]) / "logs" / "broker.log"
        wait_for(lambda: broker_log.read_text(errors="replace").count("broker ready on") == 2, 60,
                 "the new broker with its topics")
        after = f"after-{uuid.uuid4().hex[:6]}"
        produce_events(bootstrap, topic, [chat_event(f"{after}-{i}", f"{after}-{i}", "agent", "哦，好的")
                                          for i in range(5)])
        try:
            wait_for(lambda: sorted(alerts_for(after)) == sorted(f"{after}-{i}" for i in range(5)), 120,
                     "alerts after the broker restart")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; worker: {http_json(f'{worker_url}/zhijian/health/')}") from None
        # the worker rebuilt its tables from SQL: the tally counts what came before the restart, once
        wait_for(lambda: tally(worker_url) == {"messages": 15, "findings": 15}, 60, "the tally after the restart")
        for prefix in (first, during):  # nothing alerted again
            assert sorted(alerts_for(prefix)) == sorted(f"{prefix}-{i}" for i in range(5))
        # the conversations of before the restart close with the score their events alone give (哦 is fatal)
        produce_events(bootstrap, topic, [chat_event(f"{first}-{i}-end", f"{first}-{i}", "system", "",
                                                     agent=None, etype="conversation_ended") for i in range(5)])

        def score(conv: str) -> tuple[float, list[str]] | None:
            status, body = http_json(f"{api}/api/conversations/{conv}/score", token)
            return (body["score"], body["breakdown"]["fatal_labels"]) if status == 200 else None

        for i in range(5):
            assert wait_for(lambda i=i: score(f"{first}-{i}"), 60, "the score") == (0.0, ["banned_word"])
        assert up.poll() is None
        assert "rebuilt from SQL" in (Path(env["ZHIJIAN_DATA_DIR"]) / "logs" / "worker.log").read_text(errors="replace")
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
    assert "zhijian: stopped" in output.read_text(errors="replace")
