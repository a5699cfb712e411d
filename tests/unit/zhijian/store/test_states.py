"""The record's state machines as pure functions: every allowed step and every refused one, with its kind."""

from __future__ import annotations

import datetime
import itertools

import pytest

from zhijian.store import states
from zhijian.store.errors import AppealError, ClaimError, ReviewError, StoreError

NOW = "2026-11-23T10:00:00.000+00:00"
CLAIM_STATES = ("open", "claimed", "resolved", "false_positive")
CLAIM_ACTIONS = ("claim", "note", "resolved", "false_positive")


def claim(state: str, by: str | None) -> states.Claim:
    resolved = state in states.CLAIM_OUTCOMES
    return states.Claim(state, by, "t0" if by else None, by if resolved else None, "t1" if resolved else None)


# -- claims ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("action", ["claim", "resolved", "false_positive"])
def test_an_open_alert_is_claimed_or_resolved_by_whoever_acts(action: str) -> None:
    after = states.claim_transition(claim("open", None), action, actor="ann", overrule=False, now=NOW)
    assert after.state == ("claimed" if action == "claim" else action)
    assert (after.claimed_by, after.claimed_at) == ("ann", NOW)  # resolving unclaimed claims on the way
    assert (after.resolved_by, after.resolved_at) == ((None, None) if action == "claim" else ("ann", NOW))


@pytest.mark.parametrize("action", ["claim", "resolved", "false_positive"])
def test_the_holder_keeps_their_claim_time_and_may_resolve(action: str) -> None:
    after = states.claim_transition(claim("claimed", "ann"), action, actor="ann", overrule=False, now=NOW)
    assert after.state == ("claimed" if action == "claim" else action)
    assert after.claimed_by == "ann"
    assert after.claimed_at == (NOW if action == "claim" else "t0")


@pytest.mark.parametrize("action", ["claim", "resolved", "false_positive"])
def test_someone_elses_claim_is_refused_unless_overruled(action: str) -> None:
    with pytest.raises(ClaimError, match="claimed by ann") as refused:
        states.claim_transition(claim("claimed", "ann"), action, actor="bob", overrule=False, now=NOW)
    assert refused.value.kind == "conflict"
    taken = states.claim_transition(claim("claimed", "ann"), action, actor="sup", overrule=True, now=NOW)
    assert taken.claimed_by == ("sup" if action == "claim" else "ann")
    assert taken.state == ("claimed" if action == "claim" else action)


@pytest.mark.parametrize(("state", "action", "overrule"), list(itertools.product(
    states.CLAIM_OUTCOMES, ("claim", "resolved", "false_positive"), (False, True))))
def test_a_resolved_alert_is_final_even_for_a_supervisor(state: str, action: str, overrule: bool) -> None:
    with pytest.raises(ClaimError, match=f"alert already {state}") as refused:
        states.claim_transition(claim(state, "ann"), action, actor="ann", overrule=overrule, now=NOW)
    assert refused.value.kind == "conflict"


@pytest.mark.parametrize("state", CLAIM_STATES)
def test_a_note_changes_no_state(state: str) -> None:
    before = claim(state, None if state == "open" else "ann")
    assert states.claim_transition(before, "note", actor="bob", overrule=False, now=NOW) == before


@pytest.mark.parametrize("state", CLAIM_STATES)
def test_an_unknown_claim_action_is_invalid(state: str) -> None:
    with pytest.raises(ClaimError) as refused:
        states.claim_transition(claim(state, None), "escalate", actor="ann", overrule=True, now=NOW)
    assert refused.value.kind == "invalid"


# -- findings -------------------------------------------------------------------------------------------------
FINDING_STATUSES = ("active", "review", "confirmed", "rejected", "appealed", "dismissed", "upheld")
ALLOWED = {
    ("active", "confirm"): "confirmed", ("review", "confirm"): "confirmed",
    ("active", "reject"): "rejected", ("review", "reject"): "rejected",
    ("active", "appeal"): "appealed", ("confirmed", "appeal"): "appealed",
    ("appealed", "accept"): "dismissed", ("appealed", "uphold"): "upheld",
}


@pytest.mark.parametrize(("status", "action"), list(itertools.product(
    FINDING_STATUSES, ("confirm", "reject", "appeal", "accept", "uphold"))))
def test_every_finding_step_is_allowed_or_refused_as_a_conflict(status: str, action: str) -> None:
    if (status, action) in ALLOWED:
        assert states.finding_transition(status, action, finding_id="f1") == ALLOWED[(status, action)]
        return
    with pytest.raises(StoreError) as refused:
        states.finding_transition(status, action, finding_id="f1")
    assert refused.value.kind == "conflict" and f"finding f1 is {status}" in str(refused.value)
    assert isinstance(refused.value, ReviewError if action in ("confirm", "reject") else AppealError)


def test_an_unknown_finding_action_is_invalid() -> None:
    with pytest.raises(StoreError) as refused:
        states.finding_transition("active", "delete", finding_id="f1")
    assert refused.value.kind == "invalid"


# -- appeals --------------------------------------------------------------------------------------------------
T0 = datetime.datetime(2026, 11, 23, 10, 0, tzinfo=datetime.UTC)
NOTICE = T0.isoformat(timespec="milliseconds")


def test_an_appeal_inside_the_window_or_before_any_notice_is_filed() -> None:
    assert states.file_appeal("active", finding_id="f1", now=T0 + datetime.timedelta(hours=71), notice_at=NOTICE,
                              window_h=72) == "appealed"
    assert states.file_appeal("confirmed", finding_id="f1", now=T0 + datetime.timedelta(days=400), notice_at=None,
                              window_h=72) == "appealed"  # no notice yet: the window has not started


def test_an_appeal_after_the_window_is_refused_with_when_it_closed() -> None:
    with pytest.raises(AppealError, match=r"window closed at 2026-11-26T10:00:00\.000") as refused:
        states.file_appeal("active", finding_id="f1", now=T0 + datetime.timedelta(hours=72, seconds=1),
                           notice_at=NOTICE, window_h=72)
    assert refused.value.kind == "conflict"


def test_a_finding_already_under_appeal_is_refused_before_the_window_is_looked_at() -> None:
    with pytest.raises(AppealError, match="cannot be appealed again"):
        states.file_appeal("appealed", finding_id="f1", now=T0 + datetime.timedelta(days=9), notice_at=NOTICE,
                           window_h=72)


@pytest.mark.parametrize(("action", "after"), [("accept", "accepted"), ("reject", "rejected")])
def test_an_open_appeal_is_decided_once(action: str, after: str) -> None:
    assert states.appeal_transition("open", action, appeal_id="a1") == after
    for decided in ("accepted", "rejected"):
        with pytest.raises(AppealError, match=f"appeal a1 is already {decided}") as refused:
            states.appeal_transition(decided, action, appeal_id="a1")
        assert refused.value.kind == "conflict"


def test_an_unknown_appeal_action_is_invalid() -> None:
    with pytest.raises(AppealError) as refused:
        states.appeal_transition("open", "withdraw", appeal_id="a1")
    assert refused.value.kind == "invalid"


def test_only_an_open_late_unescalated_appeal_is_escalated() -> None:
    late = dict(decide_by="2026-11-23T09:00:00.000+00:00", now=NOTICE)
    assert states.due_for_escalation("open", escalated_at=None, **late)
    assert not states.due_for_escalation("open", escalated_at="2026-11-23T09:30:00.000+00:00", **late)  # once
    assert not states.due_for_escalation("accepted", escalated_at=None, **late)
    assert not states.due_for_escalation("open", escalated_at=None, decide_by="2026-11-23T11:00:00.000+00:00",
                                         now=NOTICE)  # not late yet


# -- reviews --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", ["to_review", "open"])
def test_a_review_step_opens_the_review(status: str) -> None:
    assert states.review_transition(status, "step", conversation_id="c1") == "open"


@pytest.mark.parametrize("status", ["to_review", "open"])
def test_sign_off_needs_nothing_undecided_and_nothing_pending(status: str) -> None:
    assert states.review_transition(status, "sign_off", conversation_id="c1") == "signed_off"
    with pytest.raises(ReviewError, match=r"2 finding\(s\) to confirm or reject, human items pending: none"):
        states.review_transition(status, "sign_off", conversation_id="c1", undecided=2)
    with pytest.raises(ReviewError, match="human items pending: accuracy, tone") as refused:
        states.review_transition(status, "sign_off", conversation_id="c1", pending=("accuracy", "tone"))
    assert refused.value.kind == "conflict"


@pytest.mark.parametrize("action", ["step", "sign_off"])
def test_a_signed_off_review_is_final(action: str) -> None:
    with pytest.raises(ReviewError, match="signed off: appeal instead") as refused:
        states.review_transition("signed_off", action, conversation_id="c1")
    assert refused.value.kind == "conflict"


def test_an_unknown_review_action_or_status_is_invalid() -> None:
    for status, action in (("open", "reopen"), ("archived", "step")):
        with pytest.raises(ReviewError) as refused:
            states.review_transition(status, action, conversation_id="c1")
        assert refused.value.kind == "invalid"
