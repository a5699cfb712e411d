"""Per-agent tallies from cumulative per-partition partials: exact whatever is published twice,
late, out of order or lost in between."""

from __future__ import annotations

import itertools

from stream.engine.records import Credit
from stream.engine.tally import Partial, Tally


def credits() -> list[Credit]:
    return [Credit("a1", "t1", messages=1, rules=["banned_word"], first_response_ms=4000),
            Credit("a1", "t1", messages=1, rules=[]),
            Credit("a1", "t1", day="2026-11-23", score=80.0),
            Credit("a1", "t1", messages=1, rules=["banned_word", "impolite_address"], first_response_ms=2000),
            Credit("a1", "t2", day="2026-11-23", score=0.0, fatal=True)]


def published(partition: int, items: list[Credit]) -> list[Partial]:
    """What the pipeline publishes after each credit: the whole partial so far."""
    partial = Partial("a1", partition)
    out = []
    for credit in items:
        partial.credit(credit)
        out.append(Partial.from_json(partial.to_json()))
    return out


def test_the_tally_adds_up_the_newest_partial_of_each_partition() -> None:
    p0, p1 = published(0, credits()), published(1, credits()[:2])
    tally = Tally("a1")
    for partial in [*p0, *p1]:
        tally.apply(partial)
    view = tally.public_view()
    assert (view["messages"], view["findings"], view["first_responses"], view["first_response_mean_s"]) == (
        5, 4, 3, round((4000 + 2000 + 4000) / 3 / 1000, 3))
    assert view["by_rule"] == {"banned_word": 3, "impolite_address": 1}
    assert view["days"] == {"2026-11-23": {"conversations": 2, "score_sum": 80.0, "fatal": 1, "mean_score": 40.0}}
    assert view["team_id"] == "t1"  # the newest partial that named a team (partition 1 applied last)


def test_duplicates_reordering_and_gaps_change_nothing() -> None:
    p0 = published(0, credits())
    expected = Tally("a1")
    expected.apply(p0[-1])
    for order in itertools.islice(itertools.permutations(p0), 0, 120, 7):
        tally = Tally("a1")
        for partial in [*order, *order[:2]]:  # every partial twice for some, in any order
            tally.apply(partial)
        assert tally.public_view() == expected.public_view()
    gappy = Tally("a1")  # only some publications arrive (the others were lost in a crash)
    for partial in (p0[1], p0[4]):
        gappy.apply(partial)
    assert gappy.public_view() == expected.public_view()
    assert not gappy.apply(p0[2])  # an older one after a newer one: ignored


def test_tally_and_partial_survive_their_encoding() -> None:
    tally = Tally("a1")
    for partial in published(3, credits()):
        tally.apply(partial)
    assert Tally.from_json(tally.to_json()).public_view() == tally.public_view()
