from typing import Any

from stream.tally import apply_activity, public_view


def record(offset: int, partition: int = 0, rules: list[str] | None = None, fr: int | None = None) -> dict[str, object]:
    return {"agent_id": "a1", "team_id": "t1", "message_id": f"m{partition}-{offset}", "rules": rules or [],
            "first_response_ms": fr, "src_partition": partition, "src_offset": offset}


def test_counts_messages_findings_and_first_responses() -> None:
    tally = None
    for rec in [record(1, fr=4000), record(2, rules=["banned_word"]), record(0, partition=1, fr=8000,
                                                                                   rules=["banned_word", "x"])]:
        tally, applied = apply_activity(tally, rec)
        assert applied
    assert tally is not None
    view = public_view(tally)
    assert view["messages"] == 3 and view["findings"] == 3
    assert view["by_rule"] == {"banned_word": 2, "x": 1}
    assert view["first_responses"] == 2 and view["first_response_mean_s"] == 6.0


def test_redelivered_records_are_not_counted_twice() -> None:
    tally, _ = apply_activity(None, record(5, rules=["banned_word"]))
    again, applied = apply_activity(tally, record(5, rules=["banned_word"]))
    older, applied_older = apply_activity(tally, record(3))
    assert not applied and not applied_older
    assert public_view(again)["messages"] == 1 and public_view(older)["findings"] == 1


def test_closed_conversations_give_a_running_score_per_day_once() -> None:
    def scored(offset: int, score: float, fatal: bool = False, topic: str = "ticks") -> dict[str, Any]:
        return {"kind": "scored", "agent_id": "a1", "team_id": "t1", "day": "2026-11-23", "score": score,
                "fatal": fatal, "src_topic": topic, "src_partition": 0, "src_offset": offset}

    tally = None
    for record in (scored(1, 100), scored(2, 0, fatal=True), scored(2, 0, fatal=True), scored(1, 87, topic="msgs")):
        tally, _ = apply_activity(tally, record)
    assert tally is not None
    view = public_view(tally)
    assert view["days"] == {"2026-11-23": {"conversations": 3, "score_sum": 187.0, "fatal": 1, "mean_score": 62.333}}
    assert view["messages"] == 0  # a score is not a message
