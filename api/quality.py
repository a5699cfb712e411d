"""Scores and their review: the scoreboard, an agent's and a team's day, appeals (申诉) and the
QA bonus (亮点), with an audit trail. All read from and written to SQL, the durable record,
so a restarted stack shows the same scores."""

from __future__ import annotations

import asyncio
import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.auth import Auth, in_scope, not_found
from api.deps import Appealer, Decider, Rewarder, Viewer, id_path
from api.schemas import (
    AgentDayOut,
    AppealOut,
    AppealsOut,
    AuditOut,
    ConversationScoreOut,
    ScoreboardOut,
    ScoreOut,
    TeamDayOut,
    errors,
)
from detectors import RuleBook, load_ruleset
from detectors.rubric import rubric_of
from zhijian.scoring import kpi, rubric_lookup
from zhijian.store.database import Database
from zhijian.store.users import Principal

DAY = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$", description="local day, default today")]


class AppealIn(BaseModel):
    agent_id: str | None = Field(default=None, max_length=128)  # an agent appeals for themselves
    reason: str = Field(min_length=1, max_length=2000)
    evidence: str = Field(default="", max_length=10_000)  # 事实依据: order numbers, what was promised, …


class DecisionIn(BaseModel):
    accept: bool
    note: str = Field(default="", max_length=2000)


class BonusIn(BaseModel):
    points: int = Field(ge=0, le=100)
    note: str = Field(min_length=1, max_length=2000)


def router(store: Database, book: RuleBook, auth: Auth) -> APIRouter:
    api = APIRouter()
    rubric_for = rubric_lookup(book)
    floor = rubric_of(load_ruleset().rubric)  # days and hours on the floor's clock
    versions = store.report_versions  # a changed result after a report: the report is re-issued

    def changed(score: dict[str, Any] | None, reason: str) -> None:
        if score is not None:
            versions.mark_stale([str(score.get("day") or "")], reason)

    def today(day: str | None) -> str:
        return day or datetime.datetime.now(floor.zone).date().isoformat()

    def day_rows(day: str, shift: str | None, who: Principal) -> list[dict[str, Any]]:
        rows = store.scores.of_day(day)
        return [r for r in rows if (shift is None or r["shift"] == shift) and who.sees(r)]

    def context(rows: list[dict[str, Any]], day: str) -> dict[str, Any]:
        return {"waiting_alerts": store.alerts.waiting_counts([r["conversation_id"] for r in rows]),
                "appeals": store.appeals.between(day, day)}

    @api.get("/api/agents", response_model=ScoreboardOut, responses=errors(401, 403))
    async def agents(who: Viewer, date: DAY = None, shift: str | None = None,
                     team_id: str | None = None) -> dict[str, Any]:
        day = today(date)

        def build() -> dict[str, Any]:
            rows = [r for r in day_rows(day, shift, who) if team_id is None or r["team_id"] == team_id]
            board = kpi.scoreboard(rows, **context(rows, day))
            for line in board:  # the shift as a sparkline
                line["by_hour"] = kpi.by_hour([r for r in rows if r["agent_id"] == line["agent_id"]],
                                              lambda ms: floor.local(ms).hour)
            return {"date": day, "shift": shift, "agents": board}
        return await asyncio.to_thread(build)

    @api.get("/api/agents/{agent_id}", response_model=AgentDayOut, responses=errors(401, 403, 404))
    async def agent(agent_id: Annotated[str, id_path("agent id")], who: Viewer, date: DAY = None,
                    shift: str | None = None) -> dict[str, Any]:
        day = today(date)

        def build() -> dict[str, Any]:
            if who.role == "agent" and agent_id != who.agent_id:
                raise not_found()
            rows = [r for r in day_rows(day, shift, who) if r["agent_id"] == agent_id]
            findings = [f for f in store.findings.find(agent_id=agent_id, limit=50) if who.sees(f)]
            if not rows and not findings:
                raise not_found()
            return {"agent_id": agent_id, "date": day, "shift": shift, **kpi.summarise(rows, **context(rows, day)),
                    "by_hour": kpi.by_hour(rows, lambda ms: floor.local(ms).hour),
                    "scored_conversations": [{k: r[k] for k in ("conversation_id", "score", "fatal", "closed_ms",
                                                                 "labels")}
                                      for r in rows],
                    "recent_findings": findings}
        return await asyncio.to_thread(build)

    @api.get("/api/teams/{team_id}", response_model=TeamDayOut, responses=errors(401, 403, 404))
    async def team(team_id: Annotated[str, id_path("team id")], who: Viewer, date: DAY = None,
                   shift: str | None = None) -> dict[str, Any]:
        day = today(date)

        def build() -> dict[str, Any]:
            if who.role == "agent":
                raise not_found()
            rows = [r for r in day_rows(day, shift, who) if r["team_id"] == team_id]
            if not rows:
                raise not_found()
            ctx = context(rows, day)
            return {"team_id": team_id, "date": day, "shift": shift, **kpi.summarise(rows, **ctx),
                    "agents": kpi.scoreboard(rows, **ctx)}
        return await asyncio.to_thread(build)

    @api.get("/api/conversations/{conversation_id}/score", response_model=ConversationScoreOut,
             responses=errors(401, 403, 404))
    async def conversation_score(conversation_id: Annotated[str, id_path("conversation id")],
                                 who: Viewer) -> dict[str, Any]:
        def build() -> dict[str, Any]:
            score = store.scores.get(conversation_id)
            if score is None:
                raise not_found()
            in_scope(who, score)
            return {**score, "findings": store.findings.find(conversation_id=conversation_id),
                    "audit": store.audit.trail(conversation_id)}
        return await asyncio.to_thread(build)

    @api.post("/api/findings/{finding_id}/appeals", status_code=201, response_model=AppealOut,
              responses=errors(401, 403, 404, 409))
    async def open_appeal(finding_id: Annotated[str, id_path("finding id", 32)], body: AppealIn,
                          who: Appealer) -> dict[str, Any]:
        finding = await asyncio.to_thread(lambda: store.findings.get(finding_id))
        if finding is None:
            raise not_found()
        in_scope(who, finding)  # an agent appeals only their own findings
        agent_id = who.agent_id if who.role == "agent" else (body.agent_id or finding["agent_id"] or who.username)
        return await asyncio.to_thread(lambda: store.appeals.open(
            finding_id, agent_id=str(agent_id), reason=body.reason, evidence=body.evidence, rubric_for=rubric_for))

    @api.post("/api/appeals/{appeal_id}/decision", response_model=AppealOut, responses=errors(401, 403, 404, 409))
    async def decide(appeal_id: Annotated[str, id_path("appeal id", 36)], body: DecisionIn,
                     who: Decider) -> dict[str, Any]:
        decided = await asyncio.to_thread(lambda: store.appeals.decide(
            appeal_id, accept=body.accept, reviewer=who.username, note=body.note, rubric_for=rubric_for))
        if body.accept:
            await asyncio.to_thread(changed, decided.get("score"), f"appeal {appeal_id} accepted")
        return decided

    @api.get("/api/appeals", response_model=AppealsOut, responses=errors(401, 403))
    async def list_appeals(who: Viewer, status: Literal["open", "accepted", "rejected"] | None = None,
                           agent_id: Annotated[str | None, Query(max_length=128)] = None) -> dict[str, Any]:
        if who.role == "agent":
            agent_id = who.agent_id

        def build() -> list[dict[str, Any]]:
            out = []
            for appeal in store.appeals.find(status=status, agent_id=agent_id):
                finding = store.findings.get(appeal["finding_id"]) or {}
                if who.sees({"team_id": finding.get("team_id"), "agent_id": appeal["agent_id"]}):
                    out.append({**appeal, "label": finding.get("label"), "matched": finding.get("matched"),
                                "team_id": finding.get("team_id"), "message_id": finding.get("message_id")})
            return out
        return {"appeals": await asyncio.to_thread(build)}

    @api.post("/api/conversations/{conversation_id}/bonus", response_model=ScoreOut,
              responses=errors(401, 403, 404))
    async def bonus(conversation_id: Annotated[str, id_path("conversation id")], body: BonusIn,
                    who: Rewarder) -> dict[str, Any]:
        score = await asyncio.to_thread(lambda: store.scores.award_bonus(
            conversation_id, points=body.points, note=body.note, reviewer=who.username, rubric_for=rubric_for))
        if score is None:
            raise not_found()
        await asyncio.to_thread(changed, score, f"亮点 on {conversation_id}")
        return score

    @api.get("/api/audit", response_model=AuditOut, responses=errors(401, 403))
    async def audit_trail(_: Decider, subject: Annotated[str | None, Query(max_length=128)] = None) -> dict[str, Any]:
        return {"entries": await asyncio.to_thread(store.audit.trail, subject)}

    return api
