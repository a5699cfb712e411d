"""Per-conversation processing, free of Faust so it can be tested list-in/list-out.

``process_event`` applies one valid chat event to the stored state of its conversation (a
JSON-able dict, as kept in the Faust table); ``process_tick`` applies a timer tick (a
customer has waited past a threshold, a conversation went quiet, a closed one may be
forgotten). Both return the new state and what to emit: alerts, per-agent activity for the
tally, and conversation snapshots for ``chat.conversations`` (the final one is the summary).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from detectors import RuleBook, check_conversation, load_ruleset
from detectors.timing_policy import TimingPolicy, seconds_points
from stream import alerting
from stream.timing import AGENT, KIND, LATE, MARKS, MESSAGE_ID, SEQ, TEXT, TS, Metrics, compute, insert_entry
from zhijian.alerts import Alert, iso_from_ms
from zhijian.contract import ChatEvent
from zhijian.scoring import rubric_lookup, score_summary

LOG_KEPT = 5000  # events kept per conversation (a longer one is an outlier; its oldest go)
TEXT_KEPT = 1000  # characters of each message kept for the transcript
KINDS = {("message", "customer"): "c", ("message", "agent"): "a", ("message", "bot"): "b",
         ("message", "system"): "b", ("transferred",): "t", ("conversation_ended",): "e",
         ("conversation_started",): "s"}
ConversationState = dict[str, Any]
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
    activity: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    delete: bool = False  # forget this conversation (the table key is removed)


def new_state(event: ChatEvent, now_ms: int) -> ConversationState:
    return {
        "conversation_id": event.conversation_id, "shop_id": event.shop_id, "team_id": event.team_id,
        "first_agent": event.agent_id if event.sender == "agent" or event.type == "transferred" else None,
        "owner": None, "status": "open", "log": [], "seq": 0, "max_ts": None, "late": 0,
        "labels": {}, "alerted": {}, "waiting": {"since": None, "level": 0, "shown": False}, "first_response_ms": None,
        "opened_ms": event.ts_ms, "closed_ms": None, "close_reason": None, "closed_at": None,
        "last_arrival_ms": now_ms, "version": 0, "summary_checks": None, "waiting_message_id": None,
    }


def _kind(event: ChatEvent) -> str:
    return KINDS.get((event.type, event.sender)) or KINDS.get((event.type,)) or "s"


def policy_for(book: RuleBook, shop_id: str) -> TimingPolicy:
    return book.detector(shop_id).timing


def display_status(state: ConversationState) -> str:
    """``waiting`` once a wait is long enough for the board (board_from_s), else the status."""
    waiting = state["waiting"]
    return "waiting" if waiting["since"] is not None and waiting.get("shown") else state["status"]


def board(state: ConversationState) -> tuple[Any, ...]:
    """What the waiting board shows; only a change of it is worth a snapshot (a customer
    answered within seconds never reaches the board, and costs no snapshot)."""
    waiting = state["waiting"]
    shown_since = waiting["since"] if waiting.get("shown") else None
    return display_status(state), shown_since, waiting["level"], state["owner"], state["team_id"]


def _metrics(state: ConversationState, policy: TimingPolicy) -> Metrics:
    return compute(state["log"], policy, initial_owner=state["first_agent"])


def process_event(state: ConversationState | None, event: ChatEvent, *, now_ms: int,
                  book: RuleBook | None = None) -> Outcome:
    """Apply one valid event to its conversation's state, detecting with ``book``'s rules."""
    book = book or default_rulebook()
    if state is None:
        state = new_state(event, now_ms)
    elif any(entry[MESSAGE_ID] == event.message_id for entry in state["log"]):  # the log is the id set
        return Outcome(state=state, duplicate=True)
    state = dict(state)
    before = board(state)
    state["log"] = list(state["log"][-(LOG_KEPT - 1):])
    state["seq"] += 1
    state["last_arrival_ms"] = now_ms
    if state["status"] == "closed":  # a message after the close reopens the conversation
        state.update(status="open", closed_ms=None, close_reason=None, closed_at=None)
    if event.team_id is not None:
        state["team_id"] = event.team_id
    if state["first_agent"] is None and event.sender == "agent":
        state["first_agent"] = event.agent_id
    policy = policy_for(book, event.shop_id)
    late = state["max_ts"] is not None and event.ts_ms < state["max_ts"] - policy.reorder_window_s * 1000
    state["late"] += int(late)
    state["max_ts"] = event.ts_ms if state["max_ts"] is None else max(state["max_ts"], event.ts_ms)

    outcome = Outcome(state=state)
    kind = _kind(event)
    marks: list[list[Any]] = []
    findings = []
    if kind in ("a", "c"):
        findings = book.detect(event.text, "agent" if kind == "a" else "customer", event.shop_id)
        marks = [[f.label, f.start, f.end] for f in findings]
        labels = dict(state["labels"])
        for finding in findings:
            labels[finding.label] = labels.get(finding.label, 0) + 1
        state["labels"] = labels
    insert_entry(state["log"], [event.ts_ms, state["seq"], kind, event.agent_id, event.message_id,
                                event.text[:TEXT_KEPT], marks, late])
    metrics = _metrics(state, policy)
    state["owner"] = metrics.owner
    if findings:
        alert_event = event if event.agent_id is not None or state["owner"] is None else _with_agent(event, state)
        outcome.alerts.extend(alerting.throttled_alerts(state, alert_event, findings, book, iso_from_ms(now_ms)))

    first_response_ms = None
    if state["first_response_ms"] is None and metrics.first_response_ms is not None:
        first_response_ms = state["first_response_ms"] = metrics.first_response_ms
        if kind == "a" and first_response_ms > policy.first_response_alert_s * 1000:
            points = seconds_points(first_response_ms / 1000, policy.first_response_tiers)
            outcome.alerts.append(alerting.first_response_alert(event, first_response_ms, points,
                                                                iso_from_ms(now_ms)))
    _update_waiting(state, metrics, outcome, event.ts_ms, now_ms)
    if kind == "e":
        _finalise(state, metrics, policy, book, outcome, reason="ended", now_ms=now_ms)
    elif board(state) != before:
        outcome.snapshots.append(snapshot(state, metrics, policy))
    if kind == "a":
        rules = [f.label for f in findings]  # every finding counts, alerted or throttled
        if any(alert.rule == "slow_first_response" for alert in outcome.alerts):
            rules.append("slow_first_response")
        outcome.activity.append({"agent_id": event.agent_id, "team_id": state["team_id"],
                                 "message_id": event.message_id, "rules": rules,
                                 "ruleset": book.ruleset.version, "first_response_ms": first_response_ms})
    return outcome


def _with_agent(event: ChatEvent, state: ConversationState) -> ChatEvent:
    return replace(event, agent_id=state["owner"])


def _pending_entry(state: ConversationState, message_id: str | None) -> list[Any] | None:
    return next((e for e in state["log"] if e[MESSAGE_ID] == message_id), None)


def _update_waiting(state: ConversationState, metrics: Metrics, outcome: Outcome, event_ts: int,
                    now_ms: int) -> None:
    old = state["waiting"]
    since = metrics.waiting_since
    if since == old["since"]:
        return
    if old["since"] is not None and old["level"] >= 1:  # the agent answered: clear the live alert
        pending = _pending_entry(state, state.get("waiting_message_id"))
        outcome.alerts.append(alerting.waiting_alert(
            state, state["conversation_id"], pending, since_ms=old["since"], waited_ms=event_ts - old["since"],
            kind="cleared", threshold_s=None, now_ms=now_ms))
    state["waiting"] = {"since": since, "level": 0, "shown": False}
    state["waiting_message_id"] = metrics.waiting_message_id


def process_tick(state: ConversationState | None, tick: dict[str, Any], *, now_ms: int,
                 book: RuleBook | None = None) -> Outcome:
    """Apply a timer tick. Ticks that no longer match the state (answered, reopened) do nothing."""
    book = book or default_rulebook()
    if state is None:
        return Outcome(state=None)
    policy = policy_for(book, state["shop_id"])
    kind = tick.get("kind")
    if kind == "purge":
        closed_at = state.get("closed_at")
        expired = closed_at is not None and now_ms - closed_at >= policy.closed_retention_s * 1000
        return Outcome(state=state, delete=state["status"] == "closed" and expired)
    if state["status"] != "open":
        return Outcome(state=state)
    state = dict(state)
    outcome = Outcome(state=state)
    if kind == "waiting":
        waiting = state["waiting"]
        level = int(tick.get("level", 0))
        if waiting["since"] != tick.get("since") or level not in (0, 1, 2):
            return Outcome(state=state)
        if level == 0:  # long enough for the board, no alert yet
            if waiting.get("shown"):
                return Outcome(state=state)
            state["waiting"] = {**waiting, "shown": True}
            outcome.snapshots.append(snapshot(state, _metrics(state, policy), policy))
            return outcome
        if level <= waiting["level"]:
            return Outcome(state=state)
        state["waiting"] = {"since": waiting["since"], "level": level, "shown": True}
        pending = _pending_entry(state, state.get("waiting_message_id"))
        threshold = policy.waiting_warning_s if level == 1 else policy.waiting_critical_s
        outcome.alerts.append(alerting.waiting_alert(
            state, state["conversation_id"], pending, since_ms=waiting["since"], waited_ms=now_ms - waiting["since"],
            kind="warning" if level == 1 else "critical", threshold_s=threshold, now_ms=now_ms))
        outcome.snapshots.append(snapshot(state, _metrics(state, policy), policy))
    elif kind == "close":
        if now_ms - state["last_arrival_ms"] < policy.inactivity_close_s * 1000:
            return Outcome(state=state)
        _finalise(state, _metrics(state, policy), policy, book, outcome, reason="inactivity", now_ms=now_ms)
    return outcome


def _finalise(state: ConversationState, metrics: Metrics, policy: TimingPolicy, book: RuleBook,
              outcome: Outcome, *, reason: str, now_ms: int) -> None:
    ruleset = book.detector(state["shop_id"]).ruleset
    agent_texts = [entry[TEXT] for entry in state["log"] if entry[KIND] == "a"]
    report = check_conversation(agent_texts, ruleset, book.detector(state["shop_id"]).normalise)
    state.update(status="closed", close_reason=reason, closed_ms=state["max_ts"], closed_at=now_ms)
    state["summary_checks"] = {"greeting": report.greeting, "closing": report.closing,
                               "politeness_rate": report.politeness_rate,
                               "politeness_points": report.politeness_points,
                               "findings": [f.as_dict() for f in report.findings]}
    if metrics.unanswered:
        pending = _pending_entry(state, metrics.waiting_message_id)
        waited = (state["max_ts"] or 0) - (metrics.waiting_since or 0)
        if state["waiting"]["level"] >= 1 and metrics.waiting_since == state["waiting"]["since"]:
            outcome.alerts.append(alerting.waiting_alert(
                state, state["conversation_id"], pending, since_ms=state["waiting"]["since"],
                waited_ms=now_ms - state["waiting"]["since"], kind="unanswered", threshold_s=None, now_ms=now_ms))
        if policy.unanswered_alert and pending is not None:
            event = ChatEvent(message_id=pending[MESSAGE_ID], conversation_id=state["conversation_id"],
                              shop_id=state["shop_id"], team_id=state["team_id"], agent_id=state["owner"],
                              customer_id=None, sender="customer", type="message", text=pending[TEXT],
                              ts_ms=pending[TS])
            outcome.alerts.append(alerting.build_alert(
                event, rule="unanswered_at_end", severity="warning", fatal=False, start=0,
                end=len(pending[TEXT]), detected_at=iso_from_ms(now_ms),
                detail={"close_reason": reason, "unanswered_s": round(waited / 1000, 3)}))
    state["waiting"] = {"since": None, "level": state["waiting"]["level"], "shown": False}
    summary = snapshot(state, metrics, policy, final=True)
    outcome.snapshots.append(summary)
    if summary["agent_id"] is not None:  # the live running score (appeals are applied in SQL later)
        rubric = rubric_lookup(book)(state["shop_id"])
        scored = score_summary(summary, rubric)
        outcome.activity.append({"kind": "scored", "agent_id": summary["agent_id"], "team_id": state["team_id"],
                                 "conversation_id": state["conversation_id"], "score": scored.score,
                                 "fatal": scored.fatal, "day": rubric.day(state["max_ts"] or now_ms)})


def transcript(state: ConversationState, metrics: Metrics) -> list[dict[str, Any]]:
    """Messages in event-time order; an agent message that answered a turn carries its response time."""
    kinds = {"c": "customer", "a": "agent", "b": "bot", "t": "transferred", "e": "ended", "s": "started"}
    return [{"ts_ms": e[TS], "ts": iso_from_ms(e[TS]), "sender": kinds[e[KIND]], "agent_id": e[AGENT],
             "message_id": e[MESSAGE_ID], "text": e[TEXT], "marks": e[MARKS], "late": e[LATE], "seq": e[SEQ],
             "response_s": round(metrics.replies[e[MESSAGE_ID]] / 1000, 3) if e[MESSAGE_ID] in metrics.replies
             else None}
            for e in state["log"]]


def snapshot(state: ConversationState, metrics: Metrics, policy: TimingPolicy, *, final: bool = False,
             with_transcript: bool | None = None, publish: bool = True) -> dict[str, Any]:
    """The conversation as the board, the API and scoring see it. ``final``: the closing summary.

    ``publish``: this snapshot goes to ``chat.conversations``, so it gets the next version
    (the database keeps the highest); a read-only view does not."""
    if publish:
        state["version"] = state.get("version", 0) + 1
    after_sales = state["team_id"] in policy.after_sales_teams
    waiting = state["waiting"]
    body: dict[str, Any] = {
        "conversation_id": state["conversation_id"], "shop_id": state["shop_id"], "team_id": state["team_id"],
        "agent_id": state["owner"], "status": display_status(state),
        "version": state["version"], "final": final, "opened_ms": state["opened_ms"],
        "closed_ms": state["closed_ms"], "close_reason": state["close_reason"],
        "last_event_ms": state["max_ts"], "waiting_since_ms": waiting["since"], "waiting_level": waiting["level"],
        "late_events": state["late"], "labels": state["labels"],
        "metrics": metrics.as_dict(policy, after_sales=after_sales),
    }
    if final:
        body["checks"] = state["summary_checks"]
    if final if with_transcript is None else with_transcript:
        body["transcript"] = transcript(state, metrics)
        body["findings"] = [{"message_id": e[MESSAGE_ID], "label": label, "start": start, "end": end}
                            for e in state["log"] for label, start, end in e[MARKS]]
    body["waiting_since"] = iso_from_ms(waiting["since"]) if waiting["since"] is not None else None
    return body
