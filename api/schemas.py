"""Response models of the REST API: what the OpenAPI document promises, checked by schemathesis.

Records with many fields (alerts, scores, KPI lines) name the fields clients rely on and allow
the rest (``extra="allow"``), so the document is true without copying every column."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorOut(BaseModel):
    detail: str = Field(description="what went wrong, in one sentence")


class UserOut(BaseModel):
    username: str
    role: str
    team_id: str | None
    agent_id: str | None
    display_name: str
    permissions: list[str]


class UsersOut(BaseModel):
    users: list[UserOut]


class LoginOut(BaseModel):
    token: str
    user: UserOut


class TicketOut(BaseModel):
    ticket: str
    expires_in: int = Field(description="seconds; the ticket is single-use")


class UserChangeOut(BaseModel):
    username: str
    sessions_ended: bool
    sockets_closed: int


class HealthOut(BaseModel):
    ok: bool
    components: dict[str, str] = Field(description='"ok" or why the component is down')


class TallyOut(BaseModel):
    agents: dict[str, dict[str, Any]]


class ActionOut(Open):
    alert_id: str
    state: Literal["open", "claimed", "resolved", "false_positive"]
    claimed_by: str | None
    claimed_at: str | None
    resolved_by: str | None
    resolved_at: str | None
    notes: list[dict[str, Any]]


class AlertOut(Open):
    alert_id: str
    rule: str
    severity: str
    conversation_id: str
    agent_id: str | None = None
    team_id: str | None = None
    revision: int = 0
    action: ActionOut | None = None


class AlertsOut(BaseModel):
    alerts: list[AlertOut]
    cursor: str = Field(description="pass as ?after= (REST) or &after= (WebSocket) to get what came after")


class RulesOut(BaseModel):
    revision: int
    version: str
    digest: str
    document: dict[str, Any]


class RulesSaved(BaseModel):
    revision: int
    version: str
    digest: str


class RuleRevision(BaseModel):
    revision: int
    version: str
    digest: str
    author: str
    created_at: str


class RuleHistoryOut(BaseModel):
    revisions: list[RuleRevision]


class ScoreboardOut(BaseModel):
    date: str
    shift: str | None
    agents: list[Open]


class AgentDayOut(Open):
    agent_id: str
    date: str
    shift: str | None
    by_hour: list[Open]
    scored_conversations: list[Open]
    recent_findings: list[Open]


class TeamDayOut(Open):
    team_id: str
    date: str
    shift: str | None
    agents: list[Open]


class ScoreOut(Open):
    conversation_id: str
    score: float
    fatal: bool


class ConversationScoreOut(ScoreOut):
    findings: list[Open]
    audit: list[Open]


class AppealOut(Open):
    appeal_id: str
    finding_id: str
    status: str


class AppealsOut(BaseModel):
    appeals: list[AppealOut]


class AuditOut(BaseModel):
    entries: list[Open]


class ActionTrailOut(BaseModel):
    alert_id: str
    action: dict[str, Any] | None
    trail: list[Open]


class ConversationAlertsOut(BaseModel):
    conversation_id: str
    alerts: list[Open]


class ConversationsOut(BaseModel):
    conversations: list[Open]


class ConversationOut(Open):
    conversation_id: str


class CheckOut(BaseModel):
    verdict: Literal["ok", "warn", "block"]
    findings: list[Open]
    alerts: list[Open]
    ruleset: str


class IngestOut(Open):
    """The answer to a batch: counts and one result per event (also with 422 and 503; 503 and 429
    without results when nothing was looked at)."""
    accepted: int = 0
    rejected: int = 0
    duplicate: int = 0
    skipped: int = 0
    failed: int = 0
    results: list[Open] = Field(default_factory=list)
    detail: str | None = None


class IngestStatsOut(Open):
    connected: bool
    in_flight: int
    max_in_flight: int
    max_body_bytes: int
    per_source: dict[str, int]


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for the error codes a route can answer, each with its meaning."""
    meaning = {
        401: "missing or invalid bearer token", 403: "the role lacks the permission",
        404: "not found (also for records outside the user's scope)", 409: "conflicts with the record's state",
        413: "the body is too large", 429: "too many attempts; see Retry-After",
        503: "a component this answer needs is down",
    }
    return {code: {"model": ErrorOut, "description": meaning[code]} for code in codes}


class SearchHitOut(BaseModel):
    """One conversation found, with its newest matching message (none when only its id matched)."""
    conversation_id: str
    last_match_ms: int = Field(description="the newest matching message's time (the paging key)")
    matches: int = Field(description="messages whose text matched")
    shop_id: str | None
    team_id: str | None
    agent_id: str | None
    status: str | None
    opened_ms: int | None
    message_id: str | None
    ts_ms: int | None
    sender: str | None
    excerpt: str | None = Field(description="the matching message around the match")
    match: list[int] | None = Field(description="[start, end) of the match inside excerpt")


class SearchOut(BaseModel):
    results: list[SearchHitOut]
    next_before: str | None = Field(description="pass as before= for the next page; null: no more")
