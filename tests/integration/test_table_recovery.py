"""Tables are exact after a worker restart mid-stream.

The worker is stopped after a first phase of traffic; a second phase (new messages and
re-sent duplicates of the first) is produced while it is down; a new worker recovers
the tables from their changelogs and processes the rest. The per-agent tally and the
conversation table must then equal what the test computes on its own.

Without the end-offset shim (ZHIJIAN_END_OFFSET_SHIM=off) this test fails on Tansu: the
recovered tables stop at the start of each changelog partition's last batch, so agent
counts come out short and some duplicates are counted again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.harness import http_json, prepare, start_worker, wait_for
from tests.integration.recovery_scenario import (
    CONVERSATIONS,
    conversation_events,
    expect_tally,
    expected_tally,
    produce,
    tally_of,
)
from zhijian.kafka.broker import EmbeddedBroker

pytestmark = pytest.mark.broker

def test_tables_are_exact_after_a_restart_mid_stream(broker: EmbeddedBroker, tmp_path: Path) -> None:
    env, settings = prepare(broker, tmp_path, "recovery")
    # A long linger makes each changelog partition end in a batch of several records:
    # exactly where Tansu's short "latest offset" answer cuts recovery short.
    env["ZHIJIAN_PRODUCER_LINGER_MS"] = "300"
    tally_url = f"http://127.0.0.1:{settings.worker_port}/zhijian/tally/"
    conv_url = f"http://127.0.0.1:{settings.worker_port}/zhijian/conversations/"
    phase1 = [e for c in range(CONVERSATIONS) for e in conversation_events(c, range(4))]
    phase2 = [e for c in range(CONVERSATIONS) for e in conversation_events(c, range(4, 6))]
    phase2 += phase1[::13]  # re-sent duplicates: must not count again

    worker = start_worker(env, tmp_path, "worker-1")
    try:
        asyncio.run(produce(broker.bootstrap_servers, settings.topics.messages, phase1, batches=8))
        expected1 = expected_tally(phase1)
        wait_for(lambda: tally_of(tally_url) == expected1, 60, "phase 1 tally")
    finally:
        assert worker.stop() == 0, worker.log()

    asyncio.run(produce(broker.bootstrap_servers, settings.topics.messages, phase2, batches=4))
    worker = start_worker(env, tmp_path, "worker-2")
    try:
        expected = expected_tally(phase1 + phase2)
        expect_tally(tally_url, expected, 60, "tally after restart")
        status, body = http_json(conv_url)
        assert status == 200
        assert {cid: sum(c["metrics"]["messages"].values()) for cid, c in body["conversations"].items()} == {
            f"conv-{c}": 12 for c in range(CONVERSATIONS)
        }
        assert all(c["metrics"]["first_response_s"] == 2.0 for c in body["conversations"].values())
        assert all(c["metrics"]["response_times_s"] == [2.0] * 6 for c in body["conversations"].values())
    finally:
        worker.stop()
