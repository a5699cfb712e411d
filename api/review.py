"""人工质检 (the review queue): QA staff work through the day's sample; agents see signed-off results.

QA steps need the ``decide_appeal`` permission (qa, admin): the same people who decide appeals review.
An agent reads only their own signed-off reviews; nobody else's and nothing unfinished.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from api.auth import Auth
from api.deps import Appealer, Decider, Viewer, id_path
from api.schemas import Open, errors
from detectors import RuleBook, load_ruleset
from detectors.rubric import rubric_of
from zhijian.scoring import rubric_lookup
from zhijian.store.quality import AppealError
from zhijian.store.review import ReviewError, ReviewStore

DAY = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$", description="local day, default today")]
CONVERSATION = Annotated[str, id_path("conversation id")]
T = TypeVar("T")


class FindingDecisionIn(BaseModel):
    confirm: bool
    note: str = Field(default="", max_length=2000)


class ManualFindingIn(BaseModel):
    label: str = Field(min_length=1, max_length=32)
    note: str = Field(min_length=1, max_length=2000)  # what the reviewer saw: required, it is the evidence
    message_id: str | None = Field(default=None, max_length=128)


class HumanScoresIn(BaseModel):
    points: dict[str, float] = Field(min_length=1, max_length=50)


class ItemAppealIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)
    evidence: str = Field(default="", max_length=10_000)


class SignOffIn(BaseModel):
    note: str = Field(default="", max_length=2000)


def router(store: ReviewStore, book: RuleBook, auth: Auth) -> APIRouter:
    api = APIRouter()
    rubric_for = rubric_lookup(book)
    floor = rubric_of(load_ruleset().rubric)

    async def step(work: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(work)
        except ReviewError as exc:
            raise HTTPException(status_code=exc.status, detail=str(exc)) from None

    @api.get("/api/review/queue", response_model=Open, responses=errors(401, 403))
    async def queue(who: Decider, date: DAY = None) -> dict[str, Any]:
        day = date or datetime.datetime.now(floor.zone).date().isoformat()
        rows = await asyncio.to_thread(store.review_queue, day)
        return {"date": day, "conversations": [r for r in rows if who.sees(r)]}

    @api.get("/api/review/conversations/{conversation_id}", response_model=Open, responses=errors(401, 403, 404))
    async def conversation(conversation_id: CONVERSATION, who: Viewer) -> dict[str, Any]:
        def build() -> dict[str, Any]:
            score = store.conversation_score(conversation_id)
            if score is None or not who.sees(score):
                raise HTTPException(status_code=404, detail="not found")
            review = store.review_of(conversation_id, rubric_for(score["shop_id"]))
            assert review is not None
            if not who.can("decide_appeal") and review["status"] != "signed_off":
                raise HTTPException(status_code=404, detail="not found")  # an agent sees signed-off results only
            return review
        return await asyncio.to_thread(build)

    @api.get("/api/review/results", response_model=Open, responses=errors(401, 403))
    async def results(who: Viewer, agent_id: Annotated[str | None, Query(max_length=128)] = None) -> dict[str, Any]:
        if who.role == "agent":
            agent_id = who.agent_id
        rows = await asyncio.to_thread(store.signed_off_for, agent_id)
        return {"agent_id": agent_id, "results": [r for r in rows if who.sees(r)]}

    @api.post("/api/review/findings/{finding_id}/decision", response_model=Open, responses=errors(401, 403, 404, 409))
    async def decide(finding_id: Annotated[str, id_path("finding id", 32)], body: FindingDecisionIn,
                     who: Decider) -> dict[str, Any]:
        return await step(lambda: store.decide_finding(finding_id, confirm=body.confirm, reviewer=who.username,
                                                       note=body.note, rubric_for=rubric_for))

    @api.post("/api/review/conversations/{conversation_id}/findings", status_code=201, response_model=Open,
              responses=errors(401, 403, 404, 409))
    async def add(conversation_id: CONVERSATION, body: ManualFindingIn, who: Decider) -> dict[str, Any]:
        return await step(lambda: store.add_finding(conversation_id, label=body.label, note=body.note,
                                                    reviewer=who.username, message_id=body.message_id,
                                                    rubric_for=rubric_for))

    @api.post("/api/review/conversations/{conversation_id}/items", response_model=Open,
              responses=errors(401, 403, 404, 409))
    async def items(conversation_id: CONVERSATION, body: HumanScoresIn, who: Decider) -> dict[str, Any]:
        score = await step(lambda: store.score_human(conversation_id, body.points, reviewer=who.username,
                                                     rubric_for=rubric_for))
        return {"conversation_id": conversation_id, "score": score}

    @api.post("/api/review/conversations/{conversation_id}/sign-off", response_model=Open,
              responses=errors(401, 403, 404, 409))
    async def sign_off(conversation_id: CONVERSATION, body: SignOffIn, who: Decider) -> dict[str, Any]:
        return await step(lambda: store.sign_off(conversation_id, reviewer=who.username, note=body.note,
                                                 rubric_for=rubric_for))

    @api.post("/api/conversations/{conversation_id}/items/{item}/appeals", status_code=201, response_model=Open,
              responses=errors(401, 403, 404, 409))
    async def appeal_item(conversation_id: CONVERSATION, item: Literal["first_response", "avg_response", "reply_rate"],
                          body: ItemAppealIn, who: Appealer) -> dict[str, Any]:
        """响应时效 items are appealable like findings (a system outage, a customer who wrote to the wrong shop)."""
        def work() -> dict[str, Any]:
            score = store.conversation_score(conversation_id)
            if score is None or not who.sees(score):
                raise HTTPException(status_code=404, detail="not found")
            fid = store.item_finding(conversation_id, item)
            agent_id = who.agent_id if who.role == "agent" else (score["agent_id"] or who.username)
            try:
                return store.open_appeal(fid, agent_id=str(agent_id), reason=body.reason, evidence=body.evidence,
                                         rubric_for=rubric_for)
            except AppealError as exc:
                raise HTTPException(status_code=409, detail=str(exc)) from None
        return await step(work)

    @api.get("/api/review/appeals", response_model=Open, responses=errors(401, 403))
    async def appeals(who: Decider, status: Literal["open", "accepted", "rejected"] | None = None) -> dict[str, Any]:
        """Appeals with their evidence, window and deadline; late ones are escalated first (flag + audit)."""
        def build() -> list[dict[str, Any]]:
            store.escalate_late_appeals()
            return store.appeals_with_terms(status=status)
        return {"appeals": await asyncio.to_thread(build)}

    return api
