"""The worker after a broker that kept nothing: the embedded broker is memory-only, so a restart loses every
topic, changelog and committed offset. A new worker finds its tables empty and rebuilds them from SQL (the
transcript and the conversations' snapshots): open conversations continue where they were, the tallies count
what came before, and events re-sent after the restart are recognised, not counted twice.

Phase 1 goes through a first broker and worker and reaches SQL; the broker is then stopped and started empty
(as ``zhijian up`` does with the embedded broker), a second worker starts, and phase 2 (the rest of every
conversation, plus re-sent copies of phase-1 events) goes through it. The tally, the conversations' live
state and their stored snapshots must equal what the events alone say."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from detectors import RuleBook, load_ruleset
from stream.engine.conversation import process_event
from tests.integration.harness import chat_event, http_json, prepare, start_worker, wait_for
from tests.integration.recovery_scenario import (
    CONVERSATIONS,
    conversation_events,
    expect_tally,
    expected_tally,
    produce,
    tally_of,
)
from zhijian.core.contract import ChatEvent
from zhijian.kafka.broker import EmbeddedBroker, ensure_topics, free_port
from zhijian.scoring import rubric_lookup, score_summary
from zhijian.store.database import Database

pytestmark = pytest.mark.broker


def scores_of(events: list[dict[str, Any]]) -> dict[str, float]:
    """Each conversation's score from its events alone (each once), through the engine in this process."""
    book = RuleBook(load_ruleset())
    states: dict[str, Any] = {}
    scores: dict[str, float] = {}
    for e in events:
        event = ChatEvent(e["message_id"], e["conversation_id"], e["shop_id"], e["team_id"], e["agent_id"],
                          e["customer_id"], e["sender"], e["type"], e["text"], int(e["ts"]))
        outcome = process_event(states.get(event.conversation_id), event, now_ms=event.ts_ms + 200, book=book)
        if outcome.duplicate:
            continue
        states[event.conversation_id] = outcome.state
        for summary in outcome.snapshots:
            if summary.get("final"):
                scores[event.conversation_id] = score_summary(summary, rubric_lookup(book)(event.shop_id)).score
    return scores


def test_a_worker_rebuilds_its_tables_from_sql_after_the_broker_lost_everything(tmp_path: Path) -> None:
    broker = EmbeddedBroker("127.0.0.1", free_port(), log_path=tmp_path / "tansu.log")
    broker.start()
    try:
        run(broker, tmp_path)
    finally:
        broker.stop()


def run(broker: EmbeddedBroker, tmp_path: Path) -> None:
    env, settings = prepare(broker, tmp_path, "rebuild")
    tally_url = f"http://127.0.0.1:{settings.worker_port}/zhijian/tally/"
    conv_url = f"http://127.0.0.1:{settings.worker_port}/zhijian/conversations/"
    phase1 = [e for c in range(CONVERSATIONS) for e in conversation_events(c, range(4))]
    phase2 = [e for c in range(CONVERSATIONS) for e in conversation_events(c, range(4, 6))]
    phase2 += phase1[::7]  # re-sent by producers after the restart: must not count again
    db = Database(settings.database_url)

    def stored_messages() -> int:
        with db.engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM messages").scalar_one())

    worker = start_worker(env, tmp_path, "worker-1")
    try:
        asyncio.run(produce(broker.bootstrap_servers, settings.topics.messages, phase1, batches=8))
        wait_for(lambda: tally_of(tally_url) == expected_tally(phase1), 60, "phase 1 tally")
        wait_for(lambda: stored_messages() == len(phase1), 60, "phase 1 transcript in SQL")
    finally:
        assert worker.stop() == 0, worker.log()

    broker.stop()  # everything the broker held is gone
    broker.start()
    asyncio.run(ensure_topics(broker.bootstrap_servers, settings.topics.all(), partitions=settings.partitions,
                              compacted=settings.topics.compacted()))
    worker = start_worker(env, tmp_path, "worker-2")
    try:
        asyncio.run(produce(broker.bootstrap_servers, settings.topics.messages, phase2, batches=4))
        expected = expected_tally(phase1 + phase2)
        expect_tally(tally_url, expected, 90, "tally after the broker restart")
        status, body = http_json(conv_url)
        assert status == 200
        conversations: dict[str, Any] = body["conversations"]
        # every conversation continued from its rebuilt state: 12 messages, 6 answered turns of 2 s each
        assert {cid: sum(c["metrics"]["messages"].values()) for cid, c in conversations.items()} == {
            f"conv-{c}": 12 for c in range(CONVERSATIONS)}
        assert all(c["metrics"]["first_response_s"] == 2.0 for c in conversations.values())
        assert all(c["metrics"]["response_times_s"] == [2.0] * 6 for c in conversations.values())
        wait_for(lambda: stored_messages() == len(phase1) + len(phase2) - len(phase1[::7]), 60,
                 "the transcript in SQL, each message once")
        # SQL still shows them open: the worker holds them again, so reconciliation closes none
        assert {c["conversation_id"] for c in db.conversations.find(status="open", limit=1000)} >= {
            f"conv-{c}" for c in range(CONVERSATIONS)}
        assert "rebuilt from SQL" in worker.log()
        # every conversation ends: the scores in SQL are those of the whole conversation, as if nothing happened
        ends = [chat_event(f"end-{c}", f"conv-{c}", "system", "", agent=None, etype="conversation_ended",
                           ts_ms=phase1[0]["ts"] + c * 100_000 + 30_000) for c in range(CONVERSATIONS)]
        asyncio.run(produce(broker.bootstrap_servers, settings.topics.messages, ends, batches=1))
        expected_scores = scores_of(phase1 + phase2 + ends)
        wait_for(lambda: all(db.scores.get(cid) is not None for cid in expected_scores), 60, "every score in SQL")
        assert {cid: db.scores.get(cid)["score"] for cid in expected_scores} == expected_scores  # type: ignore[index]
    finally:
        worker.stop()
        db.dispose()
