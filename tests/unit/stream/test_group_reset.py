"""A running worker notices that the broker forgot its consumer group (the embedded broker restarted empty):
a new join always gets a higher generation, so one that went back, or the same one for another member, is a
reset (stream/compat.py; the whole path runs in tests/integration/test_supervision.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from stream.compat import group_membership, group_was_reset


@pytest.mark.parametrize(("before", "now", "reset"), [
    (None, (0, "m1"), False),  # the first assignment
    ((0, "m1"), (1, "m2"), False),  # an ordinary rebalance
    ((3, "m1"), (3, "m1"), False),  # the same membership told twice
    ((1, "m2"), (0, "m3"), True),  # back to generation 0: the coordinator lost the group
    ((0, "m1"), (0, "m2"), True),  # generation 0 again, for a new member
    ((0, None), (0, "m2"), False),  # member unknown: not enough to say
    ((-1, None), (0, "m1"), False),
])
def test_a_generation_that_went_back_is_a_reset(before: tuple[int, str | None] | None, now: tuple[int, str | None],
                                                 reset: bool) -> None:
    assert group_was_reset(before, now) is reset


def test_membership_is_read_from_the_coordinator_or_falls_back_to_the_generation() -> None:
    coordinator = SimpleNamespace(generation=4, member_id="faust-m")
    consumer = SimpleNamespace(_coordinator=coordinator)
    app = SimpleNamespace(consumer=SimpleNamespace(_thread=SimpleNamespace(_ensure_consumer=lambda: consumer)))
    assert group_membership(app) == (4, "faust-m")
    assert group_membership(SimpleNamespace(consumer=None, consumer_generation_id=0)) == (0, None)
    assert group_membership(SimpleNamespace(consumer=None)) == (-1, None)
