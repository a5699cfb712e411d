"""Response-time metrics of one conversation, computed from its event log in event-time order.

Pure and exact: the metrics are a function of the *set* of events, so events that arrive out
of order (or late) give the same figures as the same events in order. The log holds one entry
per event, sorted by (ts, arrival):

    [ts_ms, seq, kind, agent_id, message_id, text, marks, late]

``kind``: ``c`` customer message, ``a`` agent message, ``b`` bot/system message, ``t``
transfer (agent_id = the new owner), ``s`` started, ``e`` ended. ``marks`` are the
detector findings as ``[label, start, end]`` for highlighting.

Turns: consecutive customer messages form one turn, from the first unanswered customer
message to the next agent message. After a transfer the new agent owns the conversation:
a turn already waiting at the transfer is answered by the new agent's first message, and
that interval is the *transfer gap*, reported on its own and not as a response time of
either agent. Bot and system messages are not responses unless the shop says so.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from detectors.timing_policy import TimingPolicy, seconds_points, share_points

TS, SEQ, KIND, AGENT, MESSAGE_ID, TEXT, MARKS, LATE = range(8)
LogEntry = list[Any]


def insert_entry(log: list[LogEntry], entry: LogEntry) -> None:
    """Insert keeping (ts, seq) order."""
    keys = [(e[TS], e[SEQ]) for e in log]
    log.insert(bisect.bisect(keys, (entry[TS], entry[SEQ])), entry)


@dataclass(slots=True)
class Transfer:
    ts_ms: int
    from_agent: str | None
    to_agent: str | None
    gap_ms: int | None = None  # transfer → the new agent's first message


@dataclass(slots=True)
class Metrics:
    first_customer_ts: int | None = None
    first_response_ms: int | None = None
    first_response_agent: str | None = None
    response_times: list[tuple[str | None, int]] = field(default_factory=list)  # (agent, ms) per turn
    turns: int = 0
    answered_turns: int = 0
    waiting_since: int | None = None  # the owner has an unanswered customer turn since then
    waiting_message_id: str | None = None
    owner: str | None = None
    transfers: list[Transfer] = field(default_factory=list)
    customer_messages: int = 0
    agent_messages: int = 0
    bot_messages: int = 0
    agents: list[str] = field(default_factory=list)
    replies: dict[str, int] = field(default_factory=dict)  # message_id of a turn's answer → its response time

    @property
    def avg_response_ms(self) -> float | None:
        if not self.response_times:
            return None
        return sum(ms for _, ms in self.response_times) / len(self.response_times)

    @property
    def reply_rate(self) -> float | None:
        """Answered customer turns over all turns (an open turn counts as unanswered)."""
        return self.answered_turns / self.turns if self.turns else None

    @property
    def unanswered(self) -> bool:
        return self.waiting_since is not None

    def as_dict(self, policy: TimingPolicy, *, after_sales: bool = False) -> dict[str, Any]:
        def seconds(ms: float | None) -> float | None:
            return None if ms is None else round(ms / 1000, 3)

        avg = self.avg_response_ms
        avg_tiers = policy.after_sales_avg_response_tiers if after_sales else policy.avg_response_tiers
        first = seconds(self.first_response_ms)
        return {
            "first_customer_ms": self.first_customer_ts,
            "first_response_s": first,
            "first_response_agent": self.first_response_agent,
            "first_response_points": None if first is None else seconds_points(first, policy.first_response_tiers),
            "response_times_s": [seconds(ms) for _, ms in self.response_times],
            "response_agents": [agent for agent, _ in self.response_times],
            "avg_response_s": seconds(avg),
            "avg_response_points": None if avg is None else seconds_points(avg / 1000, avg_tiers),
            "reply_rate": None if self.reply_rate is None else round(self.reply_rate, 4),
            "reply_rate_points": None if self.reply_rate is None else share_points(self.reply_rate,
                                                                                   policy.reply_rate_tiers),
            "turns": self.turns,
            "answered_turns": self.answered_turns,
            "waiting_since_ms": self.waiting_since,
            "owner": self.owner,
            "agents": self.agents,
            "transfers": [{"ts_ms": t.ts_ms, "from_agent": t.from_agent, "to_agent": t.to_agent,
                           "gap_s": seconds(t.gap_ms)} for t in self.transfers],
            "messages": {"customer": self.customer_messages, "agent": self.agent_messages,
                         "bot": self.bot_messages},
            "after_sales": after_sales,
        }


def compute(log: Sequence[LogEntry], policy: TimingPolicy, *, initial_owner: str | None = None) -> Metrics:
    m = Metrics(owner=initial_owner)
    pending: int | None = None  # start of the open customer turn
    pending_message: str | None = None
    last_transfer: Transfer | None = None  # waiting for the new agent's first message
    last_transfer_ts = 0
    for entry in log:
        kind, ts = entry[KIND], entry[TS]
        if kind == "c":
            m.customer_messages += 1
            if m.first_customer_ts is None:
                m.first_customer_ts = ts
            if pending is None:
                pending, pending_message = ts, entry[MESSAGE_ID]
                m.turns += 1
        elif kind == "t":
            transfer = Transfer(ts, m.owner, entry[AGENT])
            m.transfers.append(transfer)
            m.owner = entry[AGENT] or m.owner
            last_transfer = transfer
        elif kind == "a" or (kind == "b" and policy.bot_counts_as_response):
            agent = entry[AGENT] if kind == "a" else None
            if kind == "a":
                m.agent_messages += 1
                if agent is not None:
                    m.owner = agent
                    if agent not in m.agents:
                        m.agents.append(agent)
            else:
                m.bot_messages += 1
            if last_transfer is not None and kind == "a":
                last_transfer.gap_ms = ts - last_transfer.ts_ms
                last_transfer_ts = last_transfer.ts_ms
                transferred_turn = pending is not None and pending <= last_transfer.ts_ms
                last_transfer = None
                if transferred_turn:  # answered across the transfer: the gap, not a response time
                    m.answered_turns += 1
                    m.replies[entry[MESSAGE_ID]] = ts - last_transfer_ts
                    pending = pending_message = None
                    continue
            if pending is not None:
                response = ts - pending
                m.answered_turns += 1
                m.response_times.append((agent, response))
                m.replies[entry[MESSAGE_ID]] = response
                if m.first_response_ms is None:
                    m.first_response_ms, m.first_response_agent = response, agent
                pending = pending_message = None
        elif kind == "b":
            m.bot_messages += 1
    if pending is not None:
        # after a transfer the new agent owns the wait: it starts no earlier than the transfer
        transfer_ts = m.transfers[-1].ts_ms if m.transfers else None
        m.waiting_since = max(pending, transfer_ts) if transfer_ts is not None else pending
        m.waiting_message_id = pending_message
    return m
