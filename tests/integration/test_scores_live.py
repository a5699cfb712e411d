"""Scores through the running system: exact, durable across a restart, changed by an appeal."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kafka.partitioner.default import murmur2

from detectors import load_ruleset
from detectors.rubric import rubric_of
from tests.integration.harness import (
    ROOT,
    chat_event,
    http_json,
    post_json,
    prepare,
    produce_events,
    start_api,
    start_worker,
    wait_for,
)
from zhijian.kafka.broker import EmbeddedBroker

pytestmark = pytest.mark.broker


def script(tag: str, agent: str, start_ms: int, bad: str | None = None) -> list[dict[str, Any]]:
    conv = f"{tag}-{agent}-{uuid.uuid4().hex[:6]}"

    def e(mid: str, sender: str, at_s: float, text: str = "", **kw: Any) -> dict[str, Any]:
        return chat_event(f"{conv}-{mid}", conv, sender, text, ts_ms=start_ms + int(at_s * 1000), **kw)

    events = [e("c1", "customer", 0, "在吗", agent=None), e("a1", "agent", 5, "您好，很高兴为您服务", agent=agent),
              e("c2", "customer", 10, "有货吗", agent=None),
              e("a2", "agent", 15, "您好，有货的，请您放心", agent=agent)]
    if bad:
        events += [e("c3", "customer", 20, "好", agent=None), e("a3", "agent", 25, bad, agent=agent)]
    return [*events, e("a9", "agent", 40, "感谢您的耐心，祝您生活愉快", agent=agent),
            e("end", "system", 45, "", etype="conversation_ended", agent=None)]


def partition_of(conversation_id: str, partitions: int) -> int:
    """Where the producer puts a conversation's events (kafka-python's default partitioner: murmur2 of the key)."""
    return (murmur2(conversation_id.encode()) & 0x7FFFFFFF) % partitions


def markers(start_ms: int, partitions: int) -> list[dict[str, Any]]:
    """One clean conversation of agent M on every partition: once M has all of them scored, every event
    produced before them has been processed and persisted (each partition is processed in order)."""
    found: dict[int, list[dict[str, Any]]] = {}
    while len(found) < partitions:
        events = script("mark", "M", start_ms)
        found.setdefault(partition_of(events[0]["conversation_id"], partitions), events)
    return [event for events in found.values() for event in events]


def test_scores_are_exact_survive_a_restart_and_change_with_an_accepted_appeal(broker: EmbeddedBroker,
                                                                               tmp_path: Path) -> None:
    env, settings = prepare(broker, tmp_path, "scores")
    api_url, token = f"http://127.0.0.1:{settings.api_port}", settings.admin_token
    start = int(time.time() * 1000) - 120_000
    day = rubric_of(load_ruleset().rubric).day(start + 45_000)
    events = (script("s", "A", start) + script("s", "A", start, bad="嫌贵别买")
              + script("s", "A", start, bad="好的哦，请您稍等") + script("s", "B", start))
    expected = {"A": {"conversations": 3, "mean_score": round((100 + 87 + 0) / 3, 3), "fatal": 1},
                "B": {"conversations": 1, "mean_score": 100.0, "fatal": 0}}

    def board(marker: bool = False) -> dict[str, Any]:
        status, body = http_json(f"{api_url}/api/agents?date={day}", token)
        assert status == 200, body
        return {a["agent_id"]: {k: a[k] for k in ("conversations", "mean_score", "fatal")} for a in body["agents"]
                if marker or a["agent_id"] != "M"}

    worker, api = start_worker(env, tmp_path, "scores-1"), start_api(env, tmp_path)
    try:
        produce_events(settings.bootstrap_servers, settings.topics.messages, events)
        wait_for(lambda: board() == expected, 45, "the scoreboard")
        produce_events(settings.bootstrap_servers, settings.topics.messages, events)  # replayed: nothing changes
        produce_events(settings.bootstrap_servers, settings.topics.messages, markers(start, settings.partitions))
        wait_for(lambda: board(marker=True).get("M", {}).get("conversations") == settings.partitions, 45,
                 "the marker conversations behind the replay on every partition")
        assert board() == expected
    finally:
        api.stop()
        assert worker.stop() == 0, worker.log()

    # the whole stack again, on the same database: the scores come back from SQL
    worker, api = start_worker(env, tmp_path, "scores-2"), start_api(env, tmp_path)
    try:
        assert board() == expected
        status, detail = http_json(f"{api_url}/api/agents/A?date={day}", token)
        assert status == 200 and detail["labels"] == {"banned_word": 1, "conflict": 1, "politeness_rate": 1}
        assert detail["conversations"] == 3 and len(detail["scored_conversations"]) == 3
        assert detail["sections"]["服务态度"] == round((30 + 25 + 30) / 3, 3)
        banned = next(f for f in detail["recent_findings"] if f["label"] == "banned_word")
        status, appeal = post_json(f"{api_url}/api/findings/{banned['finding_id']}/appeals", token,
                                   {"agent_id": "A", "reason": "哦 was quoted from the customer"})
        assert status == 201 and appeal["status"] == "open"
        status, decided = post_json(f"{api_url}/api/appeals/{appeal['appeal_id']}/decision", token,
                                    {"accept": True, "note": "quoted, not said"})
        assert status == 200 and decided["score"]["score"] == 100.0
        after = board()["A"]
        assert (after["fatal"], after["mean_score"]) == (0, round((100 + 87 + 100) / 3, 3))
        status, _body = post_json(f"{api_url}/api/appeals/{appeal['appeal_id']}/decision", token,
                                  {"accept": False})
        assert status == 409

        report_dir = tmp_path / "reports"
        result = subprocess.run([sys.executable, "-m", "zhijian", "rollup", "--date", day, "--out", str(report_dir),
                                 "--lang", "en"],
                                env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        rows = {r["agent_id"]: r for r in csv.DictReader(
            (report_dir / f"agents-{day}.csv").read_text(encoding="utf-8-sig").splitlines())}
        assert (rows["A"]["conversations"], rows["A"]["fatal"], rows["A"]["appeals_opened"],
                rows["A"]["appeals_accepted"], rows["A"]["label_banned_word"]) == ("3", "0", "1", "1", "0")
        assert (report_dir / f"report-{day}.html").exists() and (report_dir / f"review-sample-{day}.csv").exists()
    finally:
        api.stop()
        worker.stop()
