"""A conversation's state and its agents' credits, rebuilt from what SQL stored of it.

The embedded broker keeps nothing across a restart: its changelogs go with it, and a worker that comes back
finds its tables empty although the transcript (``messages``) and the latest snapshot (``conversations``) of
every conversation are in SQL. Replaying the stored events through the same engine, with every output but the
credits discarded (no alert, snapshot or transcript line is emitted twice), gives the state live processing
had reached — turns, response times, counts, the alert throttle, the greeting/closing/politeness checks, the
64 event fingerprints that recognise a re-sent event — and the credits the live tally had from it.

What SQL cannot give back: events whose transcript line had not reached SQL when the broker went (they are
lost with the broker, as every record it held), and the rules in force at the time (the replay uses today's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from detectors import RuleBook
from stream.engine.conversation import process_event, process_tick
from stream.engine.records import Credit, Tick
from stream.engine.state import ConversationState
from zhijian.core.contract import ChatEvent

# the transcript's sender column → the event's (type, sender)
EVENT_OF = {"customer": ("message", "customer"), "agent": ("message", "agent"), "bot": ("message", "bot"),
            "transferred": ("transferred", "system"), "ended": ("conversation_ended", "system"),
            "started": ("conversation_started", "system")}


@dataclass(slots=True)
class Rebuilt:
    state: ConversationState | None  # None: closed (only its credits count) or nothing stored
    credits: list[Credit] = field(default_factory=list)
    events: int = 0


def rebuild(stored: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], *, book: RuleBook,
            partition: int) -> Rebuilt:
    """``stored``: the conversation's latest snapshot (with its ``version``); ``rows``: its stored messages in
    the order the worker stored them."""
    conversation_id, shop_id, team_id = stored["conversation_id"], stored["shop_id"], stored.get("team_id")
    state: ConversationState | None = None
    out = Rebuilt(None)
    for row in rows:
        etype, sender = EVENT_OF.get(str(row["sender"]), ("message", str(row["sender"])))
        event = ChatEvent(str(row["message_id"]), conversation_id, shop_id, team_id, row.get("agent_id"), None,
                          sender, etype, str(row.get("text") or ""), int(row["ts_ms"]))
        outcome = process_event(state, event, now_ms=event.ts_ms, book=book, partition=partition)
        if outcome.duplicate:
            continue
        out.events += 1
        out.credits.extend(outcome.credits)
        state = None if outcome.delete else outcome.state
    if state is None:
        return out
    if state.status == "open" and stored.get("final") and stored.get("close_reason") == "inactivity":
        # closed by the housekeeping timer, which left no event: close it the same way, for its day's credit
        last = state.timeline.max_ts or 0
        policy = book.detector(shop_id).timing
        outcome = process_tick(state, Tick("close"), now_ms=last + int(policy.inactivity_close_s * 1000) + 1,
                               book=book)
        out.credits.extend(outcome.credits)
    state.version = max(state.version, int(stored.get("version") or 0))  # SQL keeps only higher versions
    waiting = state.waiting
    if waiting.since is not None and waiting.since == stored.get("waiting_since_ms"):
        # the waiting alerts already raised for this wait are not raised again
        waiting.level = max(waiting.level, int(stored.get("waiting_level") or 0))
        waiting.shown = waiting.shown or stored.get("status") == "waiting"
        waiting.gone = waiting.gone or bool(stored.get("customer_gone"))
    out.state = state if state.status == "open" else None
    return out
