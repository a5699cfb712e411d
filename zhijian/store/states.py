"""The state machines of the durable record, as pure functions: no SQL, no clock (``now`` is passed in).

Each ``*_transition(state, action, …)`` returns the new state or raises a ``StoreError`` with a kind (a refused
step is a ``conflict``, an unknown action ``invalid``). The repositories read a row, ask here, write the answer.

Claims (one per alert)::

    open ──claim──▶ claimed ──resolved / false_positive──▶ resolved | false_positive   (final)
      └────────────resolved / false_positive─────────────▶ (claimed by the resolver on the way)
    note: any state, changes nothing; a claim held by someone else is taken over only by a supervisor or admin

Findings (what reviews and appeals do to one finding)::

    active ─┬─confirm─▶ confirmed ─appeal─▶ appealed ─accept─▶ dismissed   (out of the score)
    review ─┘  └reject─▶ rejected         ▲        └─uphold─▶ upheld
    active ───────────────appeal──────────┘

Appeals::

    (filed, inside the window) ▶ open ─accept─▶ accepted | ─reject─▶ rejected;
    open past its decision deadline, not yet escalated ─escalate─▶ escalated (once)

Reviews (one per sampled conversation)::

    to_review ─(any step)─▶ open ─sign_off (nothing undecided, nothing pending)─▶ signed_off (final)
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, replace
from typing import Literal

from zhijian.store.errors import AppealError, ClaimError, ReviewError

# -- claims ---------------------------------------------------------------------------------------------------
CLAIM_OUTCOMES = ("resolved", "false_positive")
ClaimAction = Literal["claim", "note", "resolved", "false_positive"]


@dataclass(frozen=True, slots=True)
class Claim:
    state: str = "open"  # open | claimed | resolved | false_positive
    claimed_by: str | None = None
    claimed_at: str | None = None
    resolved_by: str | None = None
    resolved_at: str | None = None


def claim_transition(current: Claim, action: str, *, actor: str, overrule: bool, now: str) -> Claim:
    """``actor`` does ``action``; ``overrule``: the actor may take over a claim someone else holds."""
    if action == "note":
        return current
    if action != "claim" and action not in CLAIM_OUTCOMES:
        raise ClaimError(f"unknown action {action!r}", "invalid")
    if current.state in CLAIM_OUTCOMES:
        raise ClaimError(f"alert already {current.state}")
    if current.claimed_by not in (None, actor) and not overrule:
        raise ClaimError(f"claimed by {current.claimed_by}")
    if action == "claim":
        return replace(current, state="claimed", claimed_by=actor, claimed_at=now)
    claimed = current if current.claimed_by is not None else replace(current, claimed_by=actor, claimed_at=now)
    return replace(claimed, state=action, resolved_by=actor, resolved_at=now)


# -- findings -------------------------------------------------------------------------------------------------
UNDECIDED = ("active", "review")  # a reviewer must confirm or reject these before signing off
APPEALABLE = ("active", "confirmed")
FindingAction = Literal["confirm", "reject", "appeal", "accept", "uphold"]


def finding_transition(status: str, action: str, *, finding_id: str) -> str:
    """The finding's next status."""
    if action in ("confirm", "reject"):
        if status not in UNDECIDED:
            raise ReviewError(f"finding {finding_id} is {status}: already decided")
        return "confirmed" if action == "confirm" else "rejected"
    if action == "appeal":
        if status not in APPEALABLE:
            raise AppealError(f"finding {finding_id} is {status}: it cannot be appealed again")
        return "appealed"
    if action in ("accept", "uphold"):
        if status != "appealed":
            raise AppealError(f"finding {finding_id} is {status}: it is not under appeal")
        return "dismissed" if action == "accept" else "upheld"
    raise ReviewError(f"unknown action {action!r}", "invalid")


# -- appeals --------------------------------------------------------------------------------------------------
def appeal_window_ends(notice_at: str | None, window_h: float) -> str | None:
    """When the appeal window closes: ``window_h`` after the result's notice (none yet: it has not started)."""
    if notice_at is None:
        return None
    moment = datetime.datetime.fromisoformat(notice_at) + datetime.timedelta(hours=window_h)
    return moment.isoformat(timespec="milliseconds")


def file_appeal(finding_status: str, *, finding_id: str, now: datetime.datetime, notice_at: str | None,
                window_h: float) -> str:
    """Filing an appeal against a finding: the finding's next status (``appealed``); refused outside the window."""
    status = finding_transition(finding_status, "appeal", finding_id=finding_id)
    window_ends = appeal_window_ends(notice_at, window_h)
    if window_ends is not None and now > datetime.datetime.fromisoformat(window_ends):
        raise AppealError(f"the appeal window closed at {window_ends} ({window_h:g} h after the "
                          f"result's notice at {notice_at})")
    return status


def appeal_transition(status: str, action: str, *, appeal_id: str) -> str:
    """An appeal's decision: ``open`` → ``accepted`` | ``rejected``; a decided appeal stays decided."""
    if action not in ("accept", "reject"):
        raise AppealError(f"unknown action {action!r}", "invalid")
    if status != "open":
        raise AppealError(f"appeal {appeal_id} is already {status}")
    return "accepted" if action == "accept" else "rejected"


def due_for_escalation(status: str, *, decide_by: str, escalated_at: str | None, now: str) -> bool:
    """An open appeal past its decision deadline is escalated, once."""
    return status == "open" and escalated_at is None and decide_by < now


# -- reviews --------------------------------------------------------------------------------------------------
def review_transition(status: str, action: str, *, conversation_id: str, undecided: int = 0,
                      pending: tuple[str, ...] = ()) -> str:
    """``status``: to_review (no review yet) | open | signed_off; ``action``: step (confirm, reject, add a
    finding, score items) | sign_off (needs every finding decided and every human item scored)."""
    if status == "signed_off":
        raise ReviewError(f"the review of {conversation_id} is signed off: appeal instead")
    if status not in ("to_review", "open"):
        raise ReviewError(f"unknown review status {status!r}", "invalid")
    if action == "step":
        return "open"
    if action == "sign_off":
        if undecided or pending:
            raise ReviewError(f"not ready to sign off: {undecided} finding(s) to confirm or reject, "
                              f"human items pending: {', '.join(pending) or 'none'}")
        return "signed_off"
    raise ReviewError(f"unknown action {action!r}", "invalid")
