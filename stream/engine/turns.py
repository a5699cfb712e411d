"""Response-time metrics of one conversation, maintained incrementally in event-time order.

A conversation's figures come from a small *turn machine*: consecutive customer messages form
one turn, from the first unanswered customer message to the next agent message; after a transfer
the new agent owns the conversation, and a turn already waiting at the transfer is answered by
the new agent's first message — that interval is the *transfer gap*, reported on its own and not
as a response time of either agent. Bot and system messages are not responses unless the shop
says so.

The machine never holds the transcript. The state is the machine *settled* up to the reorder
watermark (the newest event time minus ``reorder_window_s``) plus a short *tail* of the events
after it. An event in order is one step of the current machine; an event out of order but inside
the window is inserted into the tail and the current machine is replayed from the settled one —
so any order of events inside the window gives exactly the figures of the same events in order.
An event behind the watermark is *late*: it still counts and is flagged, and is applied to the
settled machine where its time says (it opens or moves the start of a turn that is still open,
answers one still open), but turns already closed are not reopened.

Cost per event: constant for events in order (one step, plus one when the oldest tail event
settles); at most ``TAIL_MAX`` steps for one out of order.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from detectors.timing_policy import TimingPolicy, seconds_points, share_points
from zhijian.core.snapshot import Metrics

TAIL_MAX = 16  # events kept after the watermark; beyond, the oldest settle early (their order is final)
LIST_MAX = 16  # agents and transfers kept per conversation
RESPONSES_MAX = 20  # the first response times, listed in the summary (the mean covers them all)

CUSTOMER, AGENT, BOT, TRANSFER, ENDED, STARTED = "c", "a", "b", "t", "e", "s"
OFFLINE = "o"  # a customer message the platform marked 留言: no agent of the shop was online (24-hour rule)


@dataclass(slots=True, frozen=True)
class Entry:
    """One event as the turn machine needs it (no text)."""

    ts: int
    seq: int  # arrival order: breaks ties between equal times
    kind: str
    agent: str | None
    message_id: str

    def key(self) -> tuple[int, int]:
        return self.ts, self.seq

    def to_list(self) -> list[Any]:
        return [self.ts, self.seq, self.kind, self.agent, self.message_id]

    @classmethod
    def from_list(cls, raw: list[Any]) -> Entry:
        return cls(int(raw[0]), int(raw[1]), str(raw[2]), raw[3], str(raw[4]))


@dataclass(slots=True)
class Transfer:
    ts_ms: int
    from_agent: str | None
    to_agent: str | None
    gap_ms: int | None = None  # transfer → the new agent's first message


@dataclass(slots=True)
class Machine:
    """Running figures of one conversation after some prefix of its events (in event-time order)."""

    owner: str | None = None
    first_customer_ts: int | None = None
    first_response_ms: int | None = None
    first_response_agent: str | None = None
    first_response_id: str | None = None  # the agent message that gave the first response
    response_sum_ms: int = 0
    responses: int = 0  # answered turns with a response time (not transfer gaps)
    # the first RESPONSES_MAX answers: (agent, response ms, when the answered turn began) — the start lets scoring
    # exempt every turn that began while the shop was offline (24-hour rule)
    response_times: list[tuple[str | None, int, int | None]] = field(default_factory=list)
    turns: int = 0
    answered_turns: int = 0
    pending_ts: int | None = None  # start of the open customer turn
    pending_id: str | None = None
    last_answer_ts: int | None = None
    open_transfer: int | None = None  # index in transfers of a transfer awaiting the new agent's message
    customer_messages: int = 0
    agent_messages: int = 0
    bot_messages: int = 0
    agents: list[str] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    pending_offline: bool = False  # the open turn began with a message the platform marked offline
    first_customer_offline: bool = False
    offline_starts: list[int] = field(default_factory=list)  # starts of the first answered turns begun offline

    def copy(self) -> Machine:
        return replace(self, response_times=list(self.response_times), agents=list(self.agents),
                       transfers=[replace(t) for t in self.transfers], offline_starts=list(self.offline_starts))

    # -- one event -------------------------------------------------------------------------
    def step(self, entry: Entry, policy: TimingPolicy) -> int | None:
        """Apply one event; returns the response time it closed (ms), if it answered a turn."""
        kind, ts = entry.kind, entry.ts
        if kind in (CUSTOMER, OFFLINE):
            flagged = kind == OFFLINE
            self.customer_messages += 1
            if self.first_customer_ts is None or ts < self.first_customer_ts:
                self.first_customer_ts, self.first_customer_offline = ts, flagged
            if self.last_answer_ts is not None and ts < self.last_answer_ts:
                return None  # older than the last answer (late): that turn is closed
            if self.pending_ts is None:
                self.pending_ts, self.pending_id, self.pending_offline = ts, entry.message_id, flagged
                self.turns += 1
            elif ts < self.pending_ts:  # a late message that started the open turn earlier
                self.pending_ts, self.pending_id, self.pending_offline = ts, entry.message_id, flagged
            return None
        if kind == TRANSFER:
            if len(self.transfers) < LIST_MAX:
                self.transfers.append(Transfer(ts, self.owner, entry.agent))
                self.open_transfer = len(self.transfers) - 1
            self.owner = entry.agent or self.owner
            return None
        if kind == AGENT or (kind == BOT and policy.bot_counts_as_response):
            agent = entry.agent if kind == AGENT else None
            if kind == AGENT:
                self.agent_messages += 1
                if agent is not None:
                    self.owner = agent
                    if agent not in self.agents and len(self.agents) < LIST_MAX:
                        self.agents.append(agent)
            else:
                self.bot_messages += 1
            if self.open_transfer is not None and kind == AGENT:
                transfer = self.transfers[self.open_transfer]
                self.open_transfer = None
                if ts >= transfer.ts_ms:
                    transfer.gap_ms = ts - transfer.ts_ms
                    if self.pending_ts is not None and self.pending_ts <= transfer.ts_ms:
                        # answered across the transfer: the gap, not a response time
                        self.answered_turns += 1
                        self.pending_ts = self.pending_id = None
                        self.pending_offline = False
                        self.last_answer_ts = ts
                        return transfer.gap_ms
            if self.pending_ts is not None and ts >= self.pending_ts:
                response = ts - self.pending_ts
                self.answered_turns += 1
                self.responses += 1
                self.response_sum_ms += response
                if len(self.response_times) < RESPONSES_MAX:
                    self.response_times.append((agent, response, self.pending_ts))
                if self.pending_offline and len(self.offline_starts) < RESPONSES_MAX:
                    self.offline_starts.append(self.pending_ts)
                if self.first_response_ms is None:
                    self.first_response_ms, self.first_response_agent = response, agent
                    self.first_response_id = entry.message_id
                self.pending_ts = self.pending_id = None
                self.pending_offline = False
                self.last_answer_ts = ts
                return response
            return None
        if kind == BOT:
            self.bot_messages += 1
        return None

    # -- what the rest of the system reads ----------------------------------------------------
    @property
    def waiting_since(self) -> int | None:
        """The owner has an unanswered customer turn since then (after a transfer: from the transfer)."""
        if self.pending_ts is None:
            return None
        if self.transfers:
            return max(self.pending_ts, self.transfers[-1].ts_ms)
        return self.pending_ts

    @property
    def avg_response_ms(self) -> float | None:
        return self.response_sum_ms / self.responses if self.responses else None

    @property
    def reply_rate(self) -> float | None:
        """Answered customer turns over all turns (an open turn counts as unanswered)."""
        return self.answered_turns / self.turns if self.turns else None

    def as_dict(self, policy: TimingPolicy, *, after_sales: bool = False) -> Metrics:
        def seconds(ms: float | None) -> float | None:
            return None if ms is None else round(ms / 1000, 3)

        avg = self.avg_response_ms
        avg_tiers = policy.after_sales_avg_response_tiers if after_sales else policy.avg_response_tiers
        first = seconds(self.first_response_ms)
        rate = self.reply_rate
        return {
            "first_customer_ms": self.first_customer_ts,
            "first_response_s": first,
            "first_response_agent": self.first_response_agent,
            "first_response_points": None if first is None else seconds_points(first, policy.first_response_tiers),
            "response_times_s": [seconds(ms) for _, ms, _ in self.response_times],
            "response_starts_ms": [start for _, _, start in self.response_times],  # parallel to response_times_s
            "response_agents": [agent for agent, _, _ in self.response_times],
            "responses": self.responses,  # answers with a response time (the mean's count; transfer gaps are not)
            "avg_response_s": seconds(avg),
            "avg_response_points": None if avg is None else seconds_points(avg / 1000, avg_tiers),
            "reply_rate": None if rate is None else round(rate, 4),
            "reply_rate_points": None if rate is None else share_points(rate, policy.reply_rate_tiers),
            "turns": self.turns,
            "answered_turns": self.answered_turns,
            "waiting_since_ms": self.waiting_since,
            # the platform's offline marks (留言): the first message, the answered turns begun offline, the open turn
            "first_customer_offline": self.first_customer_offline,
            "offline_turn_starts_ms": list(self.offline_starts),
            "waiting_offline": self.pending_offline and self.pending_ts is not None,
            "owner": self.owner,
            "agents": list(self.agents),
            "transfers": [{"ts_ms": t.ts_ms, "from_agent": t.from_agent, "to_agent": t.to_agent,
                           "gap_s": seconds(t.gap_ms)} for t in self.transfers],
            "messages": {"customer": self.customer_messages, "agent": self.agent_messages,
                         "bot": self.bot_messages},
            "after_sales": after_sales,
        }

    # -- storage --------------------------------------------------------------------------------
    def to_list(self) -> list[Any]:
        return [self.owner, self.first_customer_ts, self.first_response_ms, self.first_response_agent,
                self.first_response_id, self.response_sum_ms, self.responses,
                _pack_times(self.response_times), self.turns, self.answered_turns, self.pending_ts,
                self.pending_id, self.last_answer_ts, self.open_transfer,
                self.customer_messages, self.agent_messages, self.bot_messages, self.agents,
                [[t.ts_ms, t.from_agent, t.to_agent, t.gap_ms] for t in self.transfers],
                *([int(self.pending_offline), int(self.first_customer_offline), list(self.offline_starts)]
                  if self.pending_offline or self.first_customer_offline or self.offline_starts else [])]

    @classmethod
    def from_list(cls, raw: list[Any]) -> Machine:
        pending_offline, first_offline, starts = raw[19:22] if len(raw) >= 22 else (0, 0, [])  # none kept: no mark
        return cls(raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], _unpack_times(raw[7]), raw[8],
                   raw[9], raw[10], raw[11], raw[12], raw[13], raw[14], raw[15], raw[16], list(raw[17]),
                   [Transfer(*t) for t in raw[18]], bool(pending_offline), bool(first_offline),
                   [int(t) for t in starts])


def _pack_times(times: list[tuple[str | None, int, int | None]]) -> list[list[Any]]:
    """[agent, ms, start] with each start as the difference from the one before (the first as it is): turn starts
    only grow, so a difference is a few digits where an epoch time is thirteen (the state stays small)."""
    packed: list[list[Any]] = []
    previous: int | None = None
    for agent, ms, start in times:
        packed.append([agent, ms, None if start is None else start - (previous or 0)])
        previous = start if start is not None else previous
    return packed


def _unpack_times(raw: list[list[Any]]) -> list[tuple[str | None, int, int | None]]:
    times: list[tuple[str | None, int, int | None]] = []
    previous: int | None = None
    for item in raw:
        delta = item[2] if len(item) > 2 else None  # states written before the starts were kept have none
        start = None if delta is None else int(delta) + (previous or 0)
        times.append((item[0], int(item[1]), start))
        previous = start if start is not None else previous
    return times


@dataclass(slots=True)
class Timeline:
    """The settled machine, the tail after the watermark, and the current machine (settled + tail)."""

    settled: Machine = field(default_factory=Machine)
    tail: list[Entry] = field(default_factory=list)
    current: Machine = field(default_factory=Machine)
    max_ts: int | None = None
    settled_key: tuple[int, int] | None = None  # (ts, seq) of the newest event settled: older arrivals are late
    bots_answer: bool = False  # the shop's bot_counts_as_response when last applied (replaying the tail needs it)

    def add(self, entry: Entry, policy: TimingPolicy) -> tuple[bool, int | None]:
        """Apply one event. Returns (late, the response time it closed if it answered a turn in order)."""
        self.bots_answer = policy.bot_counts_as_response
        window_ms = int(policy.reorder_window_s * 1000)
        if (self.max_ts is not None and entry.ts < self.max_ts - window_ms) or (
                self.settled_key is not None and entry.key() < self.settled_key):
            # late: behind the window, or behind an event the tail cap settled early
            self.settled.step(entry, policy)  # its place in the settled past is approximate
            self._replay(policy)
            return True, None
        response: int | None = None
        if not self.tail or entry.key() >= self.tail[-1].key():
            self.tail.append(entry)
            response = self.current.step(entry, policy)
        else:  # out of order inside the window: insert and replay the tail
            position = len(self.tail)
            while position and self.tail[position - 1].key() > entry.key():
                position -= 1
            self.tail.insert(position, entry)
            self._replay(policy)
        self.max_ts = entry.ts if self.max_ts is None else max(self.max_ts, entry.ts)
        self._settle(self.max_ts - window_ms, policy)
        return False, response

    def _settle(self, watermark: int, policy: TimingPolicy) -> None:
        while self.tail and (self.tail[0].ts < watermark or len(self.tail) > TAIL_MAX):
            entry = self.tail.pop(0)
            self.settled.step(entry, policy)
            self.settled_key = entry.key()

    def close_turns(self, policy: TimingPolicy) -> None:
        """At a close: everything so far is final, and an open turn ends with the conversation (a message after
        the close starts a new turn and a new wait)."""
        while self.tail:
            entry = self.tail.pop(0)
            self.settled.step(entry, policy)
            self.settled_key = entry.key()
        self.settled.pending_ts = self.settled.pending_id = None
        self.settled.pending_offline = False
        self.settled.open_transfer = None
        self.current = self.settled.copy()

    def _replay(self, policy: TimingPolicy) -> None:
        current = self.settled.copy()
        for entry in self.tail:
            current.step(entry, policy)
        self.current = current

    def reset_owner(self, owner: str | None) -> None:
        """The conversation's initial owner (the assigned agent), before any event says otherwise."""
        for machine in (self.settled, self.current):
            if machine.owner is None:
                machine.owner = owner

    def to_list(self) -> list[Any]:
        """The settled machine and the tail; the current machine is the tail replayed (at most TAIL_MAX steps)."""
        return [self.settled.to_list(), [e.to_list() for e in self.tail], self.max_ts,
                list(self.settled_key) if self.settled_key else None, self.bots_answer]

    @classmethod
    def from_list(cls, raw: list[Any]) -> Timeline:
        timeline = cls(Machine.from_list(raw[0]), [Entry.from_list(e) for e in raw[1]], Machine(), raw[2],
                       (int(raw[3][0]), int(raw[3][1])) if raw[3] else None, bool(raw[4]))
        timeline._replay(TimingPolicy(bot_counts_as_response=timeline.bots_answer))
        return timeline


def replay(entries: list[Entry], policy: TimingPolicy, initial_owner: str | None = None) -> tuple[
        Machine, dict[str, int]]:
    """The exact figures of a whole stored transcript (any order), and each answer's response time by
    message_id: used to show a closed conversation, whose events all sit in SQL."""
    machine = Machine(owner=initial_owner)
    replies: dict[str, int] = {}
    for entry in sorted(entries, key=Entry.key):
        response = machine.step(entry, policy)
        if response is not None:
            replies[entry.message_id] = response
    return machine, replies
