"""Scores and their review: the scoreboard, an agent's and a team's day, appeals (申诉) and the
QA bonus (亮点), with an audit trail. All read from and written to SQL, the durable record,
so a restarted stack shows the same scores."""

from __future__ import annotations

import asyncio
import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from detectors import RuleBook, load_ruleset
from detectors.rubric import rubric_of
from zhijian import kpi
from zhijian.quality_store import AppealError, QualityStore
from zhijian.scoring import rubric_lookup

DAY = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$", description="local day, default today")]


class AppealIn(BaseModel):
    agent_id: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=2000)


class DecisionIn(BaseModel):
    accept: bool
    reviewer: str = Field(min_length=1, max_length=128)
    note: str = Field(default="", max_length=2000)


class BonusIn(BaseModel):
    points: int = Field(ge=0, le=100)
    reviewer: str = Field(min_length=1, max_length=128)
    note: str = Field(min_length=1, max_length=2000)


def router(store: QualityStore, book: RuleBook, dependencies: list[Any]) -> APIRouter:
    api = APIRouter(dependencies=[Depends(d) for d in dependencies])
    rubric_for = rubric_lookup(book)
    floor = rubric_of(load_ruleset().rubric)  # days and hours on the floor's clock

    def today(day: str | None) -> str:
        return day or datetime.datetime.now(floor.zone).date().isoformat()

    def day_rows(day: str, shift: str | None) -> list[dict[str, Any]]:
        rows = store.scored_rows(day)
        return [r for r in rows if shift is None or r["shift"] == shift]

    def context(rows: list[dict[str, Any]], day: str) -> dict[str, Any]:
        return {"waiting_alerts": store.waiting_alert_counts([r["conversation_id"] for r in rows]),
                "appeals": store.appeals_between(day, day)}

    @api.get("/api/agents")
    async def agents(date: DAY = None, shift: str | None = None, team_id: str | None = None) -> dict[str, Any]:
        day = today(date)

        def build() -> dict[str, Any]:
            rows = [r for r in day_rows(day, shift) if team_id is None or r["team_id"] == team_id]
            return {"date": day, "shift": shift, "agents": kpi.scoreboard(rows, **context(rows, day))}
        return await asyncio.to_thread(build)

    @api.get("/api/agents/{agent_id}")
    async def agent(agent_id: str, date: DAY = None, shift: str | None = None) -> dict[str, Any]:
        day = today(date)

        def build() -> dict[str, Any]:
            rows = [r for r in day_rows(day, shift) if r["agent_id"] == agent_id]
            if not rows and not store.findings_for(agent_id=agent_id, limit=1):
                raise HTTPException(status_code=404, detail=f"no scored conversations for agent {agent_id!r}")
            return {"agent_id": agent_id, "date": day, "shift": shift, **kpi.summarise(rows, **context(rows, day)),
                    "by_hour": kpi.by_hour(rows, lambda ms: floor.local(ms).hour),
                    "conversations": [{k: r[k] for k in ("conversation_id", "score", "fatal", "closed_ms", "labels")}
                                      for r in rows],
                    "recent_findings": store.findings_for(agent_id=agent_id, limit=50)}
        return await asyncio.to_thread(build)

    @api.get("/api/teams/{team_id}")
    async def team(team_id: str, date: DAY = None, shift: str | None = None) -> dict[str, Any]:
        day = today(date)

        def build() -> dict[str, Any]:
            rows = [r for r in day_rows(day, shift) if r["team_id"] == team_id]
            if not rows:
                raise HTTPException(status_code=404, detail=f"no scored conversations for team {team_id!r} on {day}")
            ctx = context(rows, day)
            return {"team_id": team_id, "date": day, "shift": shift, **kpi.summarise(rows, **ctx),
                    "agents": kpi.scoreboard(rows, **ctx)}
        return await asyncio.to_thread(build)

    @api.get("/api/conversations/{conversation_id}/score")
    async def conversation_score(conversation_id: str) -> dict[str, Any]:
        def build() -> dict[str, Any]:
            score = store.conversation_score(conversation_id)
            if score is None:
                raise HTTPException(status_code=404, detail=f"conversation {conversation_id!r} is not scored (yet)")
            return {**score, "findings": store.findings_for(conversation_id=conversation_id),
                    "audit": store.audit_trail(conversation_id)}
        return await asyncio.to_thread(build)

    @api.post("/api/findings/{finding_id}/appeals", status_code=201)
    async def open_appeal(finding_id: str, body: AppealIn) -> dict[str, Any]:
        try:
            return await asyncio.to_thread(store.open_appeal, finding_id, agent_id=body.agent_id, reason=body.reason)
        except AppealError as exc:
            raise HTTPException(status_code=404 if "no finding" in str(exc) else 409, detail=str(exc)) from None

    @api.post("/api/appeals/{appeal_id}/decision")
    async def decide(appeal_id: str, body: DecisionIn) -> dict[str, Any]:
        try:
            return await asyncio.to_thread(lambda: store.decide_appeal(
                appeal_id, accept=body.accept, reviewer=body.reviewer, note=body.note, rubric_for=rubric_for))
        except AppealError as exc:
            raise HTTPException(status_code=404 if "no appeal" in str(exc) else 409, detail=str(exc)) from None

    @api.get("/api/appeals")
    async def list_appeals(status: str | None = None, agent_id: str | None = None) -> dict[str, Any]:
        return {"appeals": await asyncio.to_thread(lambda: store.list_appeals(status=status, agent_id=agent_id))}

    @api.post("/api/conversations/{conversation_id}/bonus")
    async def bonus(conversation_id: str, body: BonusIn = Body(...)) -> dict[str, Any]:  # noqa: B008
        score = await asyncio.to_thread(lambda: store.award_bonus(
            conversation_id, points=body.points, note=body.note, reviewer=body.reviewer, rubric_for=rubric_for))
        if score is None:
            raise HTTPException(status_code=404, detail=f"conversation {conversation_id!r} is not scored (yet)")
        return score

    @api.get("/api/audit")
    async def audit_trail(subject: str | None = None) -> dict[str, Any]:
        return {"entries": await asyncio.to_thread(store.audit_trail, subject)}

    return api
