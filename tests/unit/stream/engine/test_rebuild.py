"""Rebuilding a conversation from what SQL stored of it gives the state and credits live processing had."""

from __future__ import annotations

from typing import Any

from detectors import RuleBook, load_ruleset
from stream.engine.conversation import process_event, process_tick
from stream.engine.rebuild import rebuild
from stream.engine.records import Tick, TranscriptLine
from stream.engine.tally import Totals
from tests.factories import T0, Run, ev

BOOK = RuleBook(load_ruleset())


def stored_rows(lines: list[TranscriptLine]) -> list[dict[str, Any]]:
    """The transcript lines as the ``messages`` table keeps them (what ``Conversations.transcripts`` returns)."""
    return [{"conversation_id": x.conversation_id, "message_id": x.message_id, "ts_ms": x.ts_ms, "seq": x.seq,
             "sender": x.sender, "agent_id": x.agent_id, "text": x.text} for x in sorted(lines, key=lambda x: x.seq)]


def totals(credits: list[Any]) -> list[Any]:
    t = Totals()
    for credit in credits:
        t.credit(credit)
    return t.to_list()


def half_a_conversation() -> Run:
    run = Run(BOOK)
    run.feed(ev("c1", "customer", 0, "在吗"), ev("a1", "agent", 8, "您好，很高兴为您服务"),
             ev("c2", "customer", 20, "有货吗，说了多少遍了"), ev("a2", "agent", 50, "哦，你自己去详情页看吧"),
             ev("c3", "customer", 55, "还在吗？"))
    return run


def test_an_open_conversation_comes_back_as_live_processing_left_it() -> None:
    run = half_a_conversation()
    live = run.state
    assert live is not None and live.status == "open"
    got = rebuild(run.snapshots[-1] | {"version": live.version}, stored_rows(run.lines), book=BOOK, partition=0)
    assert got.state is not None and got.events == 5
    assert got.state.last_arrival_ms == T0 + 55_000  # wall-clock arrival is not stored: the event's time stands in
    got.state.last_arrival_ms = live.last_arrival_ms
    assert got.state.to_json() == live.to_json()
    assert totals(got.credits) == totals([c for o in run.outcomes for c in o.credits])


def test_the_rest_of_the_conversation_after_a_rebuild_scores_as_if_nothing_happened() -> None:
    run = half_a_conversation()
    got = rebuild(run.snapshots[-1] | {"version": run.state.version if run.state else 0}, stored_rows(run.lines),
                  book=BOOK, partition=0)
    # the agent answers; the customer's c2 is re-sent by a producer after the broker restart
    rest = [ev("a3", "agent", 70, "您好，有货的，请您放心"), ev("c2", "customer", 20, "有货吗，说了多少遍了"),
            ev("end", "system", 90, "", etype="conversation_ended", agent=None, team=None)]
    state = got.state
    after: list[dict[str, Any]] = []
    for event in rest:
        outcome = process_event(state, event, now_ms=event.ts_ms + 200, book=BOOK, partition=0)
        if outcome.duplicate:
            continue
        state = outcome.state
        after.extend(s for s in outcome.snapshots if s.get("final"))
    run.feed(*rest)
    assert after[-1]["metrics"] == run.snapshots[-1]["metrics"]  # response times, first response, reply rate
    assert after[-1]["labels"] == run.snapshots[-1]["labels"] and after[-1]["version"] > run.state.version - 5


def test_a_closed_conversation_gives_back_only_its_credits() -> None:
    run = half_a_conversation()
    final = run.end(95)
    got = rebuild(final, stored_rows(run.lines), book=BOOK, partition=0)
    assert got.state is None
    assert totals(got.credits) == totals([c for o in run.outcomes for c in o.credits])


def test_one_closed_by_inactivity_is_closed_the_same_way_for_its_days_credit() -> None:
    run = half_a_conversation()
    outcome = process_tick(run.state, Tick("close"), now_ms=T0 + 55_000 + 601_000, book=BOOK)
    final = next(s for s in outcome.snapshots if s.get("final"))
    live = [c for o in run.outcomes for c in o.credits] + outcome.credits
    got = rebuild(final, stored_rows(run.lines), book=BOOK, partition=0)
    assert got.state is None and totals(got.credits) == totals(live)
    assert any(c.day for c in got.credits)


def test_waiting_alerts_already_raised_are_not_raised_again() -> None:
    run = half_a_conversation()
    run.tick("waiting", 55 + 31, since=T0 + 55_000, level=1)
    snap = run.snapshots[-1]
    assert snap["waiting_level"] == 1
    got = rebuild(snap, stored_rows(run.lines), book=BOOK, partition=0)
    assert got.state is not None and got.state.waiting.level == 1 and got.state.waiting.shown
    assert not process_tick(got.state, Tick("waiting", T0 + 55_000, 1), now_ms=T0 + 90_000, book=BOOK).alerts
