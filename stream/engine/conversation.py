"""One conversation, one event at a time: free of Faust, tested list-in/list-out.

``process_event`` applies one valid chat event to its conversation's state; ``process_tick`` applies
what a timer asks (the waiting board, a waiting level, the customer gone quiet, close, purge). Both
return an :class:`Outcome`: the new state and what to emit — alerts, transcript lines (texts and
findings, for SQL), credits for the agents' tallies, and snapshots for ``chat.conversations`` (the
final one is the closing summary). Per-event cost does not depend on the conversation's length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from detectors import RuleBook, load_ruleset
from detectors.conversation import message_phrases, report_from_flags
from detectors.timing_policy import TimingPolicy, seconds_points
from stream.engine import alerting
from stream.engine.records import Credit, Mark, Tick, TranscriptLine
from stream.engine.state import CLOSING, EXCERPT_CHARS, GREETING, POLITE, ConversationState, Waiting
from stream.engine.turns import AGENT, BOT, CUSTOMER, ENDED, OFFLINE, STARTED, TRANSFER, Entry, Machine
from zhijian.core.alerts import Alert, iso_from_ms
from zhijian.core.contract import ChatEvent
from zhijian.core.snapshot import Checks, Snapshot
from zhijian.scoring import rubric_lookup, score_summary

TEXT_KEPT = 10_000  # characters of a message kept in the transcript (the contract's limit)
KINDS = {("message", "customer"): CUSTOMER, ("message", "agent"): AGENT, ("message", "bot"): BOT,
         ("message", "system"): BOT, ("transferred",): TRANSFER, ("conversation_ended",): ENDED,
         ("conversation_started",): STARTED}
_default_book: RuleBook | None = None


def default_rulebook() -> RuleBook:
    """The seed rules, for callers (tests, tools) that do not follow live rule changes."""
    global _default_book
    if _default_book is None:
        _default_book = RuleBook(load_ruleset())
    return _default_book


@dataclass(slots=True)
class Outcome:
    state: ConversationState | None
    duplicate: bool = False
    alerts: list[Alert] = field(default_factory=list)
    lines: list[TranscriptLine] = field(default_factory=list)
    credits: list[Credit] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    delete: bool = False  # forget this conversation (the table key is removed)
    changed: bool = True  # the state changed (and must reach the changelog)


def kind_of(event: ChatEvent) -> str:
    return KINDS.get((event.type, event.sender)) or KINDS.get((event.type,)) or STARTED


def policy_for(book: RuleBook, shop_id: str) -> TimingPolicy:
    return book.detector(shop_id).timing


def display_status(state: ConversationState) -> str:
    """``waiting`` once a wait is long enough for the board (board_from_s), else the status."""
    return "waiting" if state.waiting.since is not None and state.waiting.shown else state.status


def board(state: ConversationState) -> tuple[Any, ...]:
    """What the waiting board shows; only a change of it is worth a snapshot (a customer answered
    within seconds never reaches the board, and costs no snapshot)."""
    w = state.waiting
    return display_status(state), w.since if w.shown else None, w.level, w.gone, state.owner, state.team_id


def new_state(event: ChatEvent, partition: int) -> ConversationState:
    return ConversationState(conversation_id=event.conversation_id, shop_id=event.shop_id, partition=partition,
                             team_id=event.team_id, opened_ms=event.ts_ms)


def process_event(state: ConversationState | None, event: ChatEvent, *, now_ms: int, book: RuleBook | None = None,
                  partition: int = 0) -> Outcome:
    """Apply one valid event to its conversation's state (mutated in place), detecting with ``book``."""
    book = book or default_rulebook()
    if state is None:
        state = new_state(event, partition)
    elif state.seen(event.message_id):
        return Outcome(state=state, duplicate=True, changed=False)
    if state.status == "closed" and state.closed_ms is not None and event.ts_ms <= state.closed_ms:
        return _after_close(state, event, book)
    before = board(state)
    state.remember(event.message_id)
    state.seq += 1
    state.last_arrival_ms = now_ms
    if state.status == "closed":  # a message after the close reopens the conversation
        state.status, state.closed_ms, state.close_reason, state.closed_at = "open", None, None, None
        state.summary_checks = None
    if event.team_id is not None:
        state.team_id = event.team_id
    kind = kind_of(event)
    if kind == CUSTOMER and event.agent_id is not None:
        state.assigned = event.agent_id  # the agent this conversation is assigned to
        state.timeline.reset_owner(event.agent_id)
    detector = book.detector(event.shop_id)
    policy = detector.timing
    outcome = Outcome(state=state)

    findings: list[Any] = []
    marks: tuple[Mark, ...] = ()
    counted: list[Any] = []
    if kind in (AGENT, CUSTOMER) and event.text:
        findings = detector.detect(event.text, "agent" if kind == AGENT else "customer", review=True)
        if findings:
            marks = tuple(_mark(f) for f in findings)
            counted = [f for f, m in zip(findings, marks, strict=True) if m.counted]
            labels = state.labels
            for finding in counted:
                labels[finding.label] = labels.get(finding.label, 0) + 1

    step = OFFLINE if kind == CUSTOMER and event.offline else kind
    late, _ = state.timeline.add(Entry(event.ts_ms, state.seq, step, event.agent_id, event.message_id), policy)
    state.late += int(late)
    if kind == CUSTOMER:
        if state.last_customer_ms is None or event.ts_ms >= state.last_customer_ms:
            state.last_customer_ms, state.last_customer_text = event.ts_ms, event.text[:EXCERPT_CHARS]
            state.waiting.gone = False
    elif kind == AGENT and event.text:
        greeting, closing, polite = message_phrases(event.text, detector.ruleset, detector.normalise)
        flags = GREETING * greeting | CLOSING * closing | POLITE * polite
        state.checks.add(event.ts_ms, state.seq, flags, event.message_id)

    outcome.lines.append(TranscriptLine(
        state.conversation_id, event.message_id, event.ts_ms, state.seq, kind, event.agent_id, state.team_id,
        state.shop_id, event.text[:TEXT_KEPT], late, book.ruleset.version, marks))

    current = state.timeline.current
    owner = current.owner
    if counted:
        alert_event = event if event.agent_id is not None or owner is None else _with_agent(event, owner)
        outcome.alerts.extend(alerting.throttled_alerts(state, alert_event, counted, book, iso_from_ms(now_ms)))
    first_response_ms = None
    if not state.first_response_sent and current.first_response_ms is not None:
        # measured now: by this agent message, or by an earlier customer message arriving after the answer
        state.first_response_sent = True
        first_response_ms = current.first_response_ms
        answered_by_this = kind == AGENT and current.first_response_id == event.message_id
        if first_response_ms > policy.first_response_alert_s * 1000:
            points = seconds_points(first_response_ms / 1000, policy.first_response_tiers)
            answer = event if answered_by_this else ChatEvent(
                str(current.first_response_id), state.conversation_id, state.shop_id, state.team_id,
                current.first_response_agent, None, "agent", "message", "", event.ts_ms)
            outcome.alerts.append(alerting.first_response_alert(answer, first_response_ms, points,
                                                                iso_from_ms(now_ms)))
        if not answered_by_this and current.first_response_agent is not None:
            outcome.credits.append(Credit(current.first_response_agent, state.team_id,
                                          first_response_ms=first_response_ms,
                                          rules=["slow_first_response"] if outcome.alerts and
                                          outcome.alerts[-1].rule == "slow_first_response" else []))
            first_response_ms = None  # credited above, not again with this event
    _update_waiting(state, current, outcome, event.ts_ms, now_ms)
    if kind == ENDED:
        _finalise(state, policy, book, outcome, reason="ended", now_ms=now_ms)
    elif board(state) != before:
        outcome.snapshots.append(snapshot(state, policy))
    if kind == AGENT and event.agent_id is not None:
        rules = [f.label for f in counted]  # every finding counts, alerted or throttled
        if any(alert.rule == "slow_first_response" for alert in outcome.alerts):
            rules.append("slow_first_response")
        outcome.credits.append(Credit(event.agent_id, state.team_id, messages=1, rules=rules,
                                      first_response_ms=first_response_ms))
    return outcome


def _after_close(state: ConversationState, event: ChatEvent, book: RuleBook) -> Outcome:
    """An event from before the close arriving after it: stored in the transcript (with its findings), flagged
    late, but the conversation stays closed and scored once (its summary is not re-issued)."""
    state.remember(event.message_id)
    state.seq += 1
    state.late += 1
    kind = kind_of(event)
    marks: tuple[Mark, ...] = ()
    if kind in (AGENT, CUSTOMER) and event.text:
        sender = "agent" if kind == AGENT else "customer"
        findings = book.detector(event.shop_id).detect(event.text, sender, review=True)
        marks = tuple(_mark(f) for f in findings)
    line = TranscriptLine(state.conversation_id, event.message_id, event.ts_ms, state.seq, kind, event.agent_id,
                          state.team_id, state.shop_id, event.text[:TEXT_KEPT], True, book.ruleset.version, marks)
    return Outcome(state=state, lines=[line])


def _mark(finding: Any) -> Mark:
    return Mark(finding.label, finding.start, finding.end, finding.rule_id, finding.severity, finding.fatal,
                not getattr(finding, "review_only", False), getattr(finding, "source", "rule"),
                getattr(finding, "score", None))


def _with_agent(event: ChatEvent, agent: str) -> ChatEvent:
    return ChatEvent(event.message_id, event.conversation_id, event.shop_id, event.team_id, agent, event.customer_id,
                     event.sender, event.type, event.text, event.ts_ms)


def _update_waiting(state: ConversationState, current: Machine, outcome: Outcome, event_ts: int, now_ms: int) -> None:
    old = state.waiting
    since = current.waiting_since if state.status == "open" else None
    if since == old.since or (since is not None and old.since is not None and since < old.since):
        # the same wait (a late customer message may move its start earlier: one episode, one alert)
        old.message_id = current.pending_id if since is not None else None
        return
    if old.since is not None and since is not None and old.level >= 1:  # transferred: the new agent's wait
        outcome.alerts.append(alerting.waiting_alert(
            state, since_ms=old.since, waited_ms=event_ts - old.since, kind="transferred", threshold_s=None,
            now_ms=now_ms))
    elif old.since is not None and old.level >= 1:  # the agent answered: clear the live alert
        outcome.alerts.append(alerting.waiting_alert(
            state, since_ms=old.since, waited_ms=event_ts - old.since, kind="cleared", threshold_s=None,
            now_ms=now_ms))
    state.waiting = Waiting(since=since, message_id=current.pending_id if since is not None else None)


def process_tick(state: ConversationState | None, tick: Tick, *, now_ms: int, book: RuleBook | None = None) -> Outcome:
    """Apply a timer's tick. A tick that no longer fits the state (answered, reopened) does nothing."""
    book = book or default_rulebook()
    if state is None:
        return Outcome(state=None, changed=False)
    policy = policy_for(book, state.shop_id)
    unchanged = Outcome(state=state, changed=False)
    if tick.kind == "purge":
        expired = state.closed_at is not None and now_ms - state.closed_at >= policy.closed_retention_s * 1000
        return Outcome(state=state, delete=True) if state.status == "closed" and expired else unchanged
    if state.status != "open":
        return unchanged
    outcome = Outcome(state=state)
    waiting = state.waiting
    if tick.kind in ("board", "waiting", "gone") and (waiting.since is None or waiting.since != tick.since):
        return unchanged
    if tick.kind == "board":
        if waiting.shown:
            return unchanged
        waiting.shown = True
    elif tick.kind == "gone":
        if waiting.gone:
            return unchanged
        waiting.gone = True
    elif tick.kind == "waiting":
        level = tick.level
        if level not in (1, 2) or level <= waiting.level:
            return unchanged
        assert waiting.since is not None
        waiting.level, waiting.shown = level, True
        threshold = policy.waiting_warning_s if level == 1 else policy.waiting_critical_s
        outcome.alerts.append(alerting.waiting_alert(
            state, since_ms=waiting.since, waited_ms=now_ms - waiting.since,
            kind="warning" if level == 1 else "critical", threshold_s=threshold, now_ms=now_ms))
    elif tick.kind == "close":
        if now_ms - state.last_arrival_ms < policy.inactivity_close_s * 1000:
            return unchanged
        deadline = _offline_deadline(state, book)
        if deadline is not None and now_ms < deadline:
            return unchanged  # a 留言 left while the shop is offline waits for its answer (24-hour rule)
        # closed at the end of its 24 hours: 回复中断 now, not pending until the rollup expires it
        overdue_at = now_ms if deadline is not None else None
        _finalise(state, policy, book, outcome, reason="inactivity", now_ms=now_ms, offline_expired_ms=overdue_at)
        return outcome
    else:
        return unchanged
    outcome.snapshots.append(snapshot(state, policy))
    return outcome


def _offline_deadline(state: ConversationState, book: RuleBook) -> int | None:
    """When the question the conversation waits on stops being answerable in time, if it was asked while the shop
    was offline (else None). Until then a close for inactivity would turn next morning's answer into a new turn and
    the question into a never-answered one, so the conversation stays open; after it, the close is 回复中断."""
    current = state.timeline.current
    since = current.waiting_since
    if since is None:
        return None
    rubric = rubric_lookup(book)(state.shop_id)
    marked = current.pending_offline  # the platform said no agent was online (留言)
    if not marked and (not (rubric.shifts or rubric.offline_hours) or not rubric.offline(since)):
        return None
    return since + rubric.offline_reply_s * 1000


def _finalise(state: ConversationState, policy: TimingPolicy, book: RuleBook, outcome: Outcome, *, reason: str,
              now_ms: int, offline_expired_ms: int | None = None) -> None:
    detector = book.detector(state.shop_id)
    current = state.timeline.current
    checks = state.checks
    report = report_from_flags([f for _, _, f in checks.first], [f for _, _, f in checks.last], checks.polite,
                               checks.messages, detector.ruleset, greeting_bit=GREETING, closing_bit=CLOSING,
                               detail={"first_message_id": checks.first_id, "last_message_id": checks.last_id})
    max_ts = state.timeline.max_ts
    state.status, state.close_reason, state.closed_ms, state.closed_at = "closed", reason, max_ts, now_ms
    state.summary_checks = {"greeting": report.greeting, "closing": report.closing,
                            "politeness_rate": report.politeness_rate, "politeness_points": report.politeness_points,
                            "findings": [f.as_dict() for f in report.findings]}
    waiting = state.waiting
    if current.waiting_since is not None:
        waited = (max_ts or 0) - current.waiting_since
        if waiting.level >= 1 and current.waiting_since == waiting.since:
            outcome.alerts.append(alerting.waiting_alert(
                state, since_ms=waiting.since, waited_ms=now_ms - waiting.since, kind="unanswered",
                threshold_s=None, now_ms=now_ms))
        if policy.unanswered_alert and current.pending_id is not None:
            outcome.alerts.append(alerting.unanswered_alert(state, current, reason=reason, waited_ms=waited,
                                                            now_ms=now_ms))
    state.waiting = Waiting(since=None, level=waiting.level)
    summary = snapshot(state, policy, final=True)
    if offline_expired_ms is not None:
        summary["offline_expired_ms"] = offline_expired_ms
    outcome.snapshots.append(summary)
    state.timeline.close_turns(policy)  # a message after the close starts a new turn and a new wait
    if summary["agent_id"] is not None:  # the live running score (appeals are applied in SQL later)
        rubric = rubric_lookup(book)(state.shop_id)
        scored = score_summary(summary, rubric)
        if state.credited is None:
            day = rubric.day(max_ts or now_ms)
            outcome.credits.append(Credit(summary["agent_id"], state.team_id, day=day, score=scored.score,
                                          fatal=int(scored.fatal)))
        else:  # closed again after a reopen: one conversation still, only its score changes
            day, old_score, old_fatal = state.credited
            outcome.credits.append(Credit(summary["agent_id"], state.team_id, day=day, conversations=0,
                                          score=round(scored.score - old_score, 3),
                                          fatal=int(scored.fatal) - int(old_fatal)))
        state.credited = [day, scored.score, int(scored.fatal)]


def snapshot(state: ConversationState, policy: TimingPolicy, *, final: bool = False,
             publish: bool = True, metrics: bool | None = None) -> Snapshot:
    """The conversation as the board, the API and scoring see it. ``final``: the closing summary.

    ``publish``: this snapshot goes to ``chat.conversations``, so it gets the next version (the
    database keeps the highest); a read-only view does not. ``metrics`` (default: the summary and views
    have them, board updates do not — the board needs none, and they are most of a snapshot's cost)."""
    if publish:
        state.version += 1
    current = state.timeline.current
    after_sales = state.team_id in policy.after_sales_teams
    waiting = state.waiting
    body: Snapshot = {
        "conversation_id": state.conversation_id, "shop_id": state.shop_id, "team_id": state.team_id,
        "agent_id": state.owner, "assigned_agent": state.assigned, "status": display_status(state),
        "version": state.version, "final": final, "opened_ms": state.opened_ms,
        "closed_ms": state.closed_ms, "close_reason": state.close_reason,
        "last_event_ms": state.timeline.max_ts, "waiting_since_ms": waiting.since, "waiting_level": waiting.level,
        "waiting_message_id": waiting.message_id, "last_customer_ms": state.last_customer_ms,
        "waiting_excerpt": state.last_customer_text if waiting.since is not None else None,
        "customer_gone": waiting.gone, "customer_gone_after_s": policy.customer_gone_s,
        "late_events": state.late, "labels": dict(state.labels),
        "metrics": current.as_dict(policy, after_sales=after_sales) if (
            final or not publish if metrics is None else metrics) else None,
        "waiting_since": iso_from_ms(waiting.since) if waiting.since is not None else None,
    }
    if final:
        body["checks"] = cast(Checks | None, state.summary_checks)
    return body
