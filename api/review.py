"""人工质检 (the review queue): QA staff work through the day's sample; agents see signed-off results.

QA steps need the ``decide_appeal`` permission (qa, admin): the same people who decide appeals review.
An agent reads only their own signed-off reviews; nobody else's and nothing unfinished.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, Field

from api.auth import Auth
from api.deps import Appealer, Decider, Viewer, id_path
from api.schemas import Open, errors
from detectors import RuleBook, load_ruleset
from detectors.rubric import rubric_of
from zhijian.scoring import rubric_lookup
from zhijian.store.database import Database

DAY = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$", description="local day, default today")]
CONVERSATION = Annotated[str, id_path("conversation id")]
KIND = Literal["day", "week", "month"]
PERIOD = Annotated[str, Path(pattern=r"^\d{4}-(\d{2}-\d{2}|W\d{2}|\d{2})$",
                             description="2026-11-20, 2026-W47, 2026-11")]
VERSION = Annotated[int, Path(ge=1, le=1_000_000)]
FILE = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,80}\.(csv|html)$")]
REPORT_READERS = ("admin", "qa", "supervisor")  # the reports list every agent and team
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


def router(store: Database, book: RuleBook, auth: Auth) -> APIRouter:
    api = APIRouter()
    rubric_for = rubric_lookup(book)
    floor = rubric_of(load_ruleset().rubric)
    versions, picks = store.report_versions, store.picks

    async def step(work: Callable[[], T]) -> T:
        return await asyncio.to_thread(work)  # a refused step is a StoreError: api/store_errors.py answers it

    def after(conversation_id: str, score: dict[str, Any] | None, reason: str, *, problem: bool) -> None:
        """A review step moved a score (a report already out is re-issued) or found a problem (its neighbours join
        the day's sample: "质检过程中发现服务问题,应对该录音前后录音依次听取录音")."""
        if score is not None:
            versions.mark_stale([str(score.get("day") or "")], reason)
        if problem:
            picks.add_neighbours(conversation_id)

    @api.get("/api/review/queue", response_model=Open, responses=errors(401, 403))
    async def queue(who: Decider, date: DAY = None) -> dict[str, Any]:
        day = date or datetime.datetime.now(floor.zone).date().isoformat()
        rows = await asyncio.to_thread(store.review.queue, day)
        return {"date": day, "conversations": [r for r in rows if who.sees(r)]}

    @api.get("/api/review/conversations/{conversation_id}", response_model=Open, responses=errors(401, 403, 404))
    async def conversation(conversation_id: CONVERSATION, who: Viewer) -> dict[str, Any]:
        def build() -> dict[str, Any]:
            score = store.scores.get(conversation_id)
            if score is None or not who.sees(score):
                raise HTTPException(status_code=404, detail="not found")
            review = store.review.of(conversation_id, rubric_for(score["shop_id"]))
            assert review is not None
            if not who.can("decide_appeal") and review["status"] != "signed_off":
                raise HTTPException(status_code=404, detail="not found")  # an agent sees signed-off results only
            return review
        return await asyncio.to_thread(build)

    @api.get("/api/review/results", response_model=Open, responses=errors(401, 403))
    async def results(who: Viewer, agent_id: Annotated[str | None, Query(max_length=128)] = None) -> dict[str, Any]:
        if who.role == "agent":
            agent_id = who.agent_id
        rows = await asyncio.to_thread(store.review.signed_off_for, agent_id)
        return {"agent_id": agent_id, "results": [r for r in rows if who.sees(r)]}

    @api.post("/api/review/findings/{finding_id}/decision", response_model=Open, responses=errors(401, 403, 404, 409))
    async def decide(finding_id: Annotated[str, id_path("finding id", 32)], body: FindingDecisionIn,
                     who: Decider) -> dict[str, Any]:
        done = await step(lambda: store.review.decide_finding(finding_id, confirm=body.confirm, reviewer=who.username,
                                                       note=body.note, rubric_for=rubric_for))
        score = done.get("score")
        if score is not None:
            await asyncio.to_thread(after, score["conversation_id"], score, f"review of finding {finding_id}",
                                    problem=body.confirm)
        return done

    @api.post("/api/review/conversations/{conversation_id}/findings", status_code=201, response_model=Open,
              responses=errors(401, 403, 404, 409))
    async def add(conversation_id: CONVERSATION, body: ManualFindingIn, who: Decider) -> dict[str, Any]:
        done = await step(lambda: store.review.add_finding(conversation_id, label=body.label, note=body.note,
                                                    reviewer=who.username, message_id=body.message_id,
                                                    rubric_for=rubric_for))
        await asyncio.to_thread(after, conversation_id, done.get("score"), f"manual finding {body.label}",
                                problem=True)
        return done

    @api.post("/api/review/conversations/{conversation_id}/items", response_model=Open,
              responses=errors(401, 403, 404, 409))
    async def items(conversation_id: CONVERSATION, body: HumanScoresIn, who: Decider) -> dict[str, Any]:
        score = await step(lambda: store.review.score_human(conversation_id, body.points, reviewer=who.username,
                                                     rubric_for=rubric_for))
        await asyncio.to_thread(after, conversation_id, score, "human items scored", problem=False)
        return {"conversation_id": conversation_id, "score": score}

    @api.post("/api/review/conversations/{conversation_id}/sign-off", response_model=Open,
              responses=errors(401, 403, 404, 409))
    async def sign_off(conversation_id: CONVERSATION, body: SignOffIn, who: Decider) -> dict[str, Any]:
        return await step(lambda: store.review.sign_off(conversation_id, reviewer=who.username, note=body.note,
                                                 rubric_for=rubric_for))

    @api.post("/api/conversations/{conversation_id}/items/{item}/appeals", status_code=201, response_model=Open,
              responses=errors(401, 403, 404, 409))
    async def appeal_item(conversation_id: CONVERSATION, item: Literal["first_response", "avg_response", "reply_rate"],
                          body: ItemAppealIn, who: Appealer) -> dict[str, Any]:
        """响应时效 items are appealable like findings (a system outage, a customer who wrote to the wrong shop)."""
        def work() -> dict[str, Any]:
            score = store.scores.get(conversation_id)
            if score is None or not who.sees(score):
                raise HTTPException(status_code=404, detail="not found")
            fid = store.appeals.item_finding(conversation_id, item)
            agent_id = who.agent_id if who.role == "agent" else (score["agent_id"] or who.username)
            return store.appeals.open(fid, agent_id=str(agent_id), reason=body.reason, evidence=body.evidence,
                                      rubric_for=rubric_for)
        return await step(work)

    def reader(who: Any) -> None:
        if who.role not in REPORT_READERS:
            raise HTTPException(status_code=404, detail="not found")

    @api.get("/api/reports/{kind}/{name}/versions", response_model=Open, responses=errors(401, 403, 404))
    async def report_versions(kind: KIND, name: PERIOD, who: Viewer) -> dict[str, Any]:
        """Every issued version of a day's, week's or month's report, oldest first, with what changed in each."""
        reader(who)
        found = await asyncio.to_thread(versions.versions, kind, name)
        if not found:
            raise HTTPException(status_code=404, detail="not found")
        return {"kind": kind, "name": name, "versions": found}

    @api.get("/api/reports/{kind}/{name}/versions/{version}", response_model=Open, responses=errors(401, 403, 404))
    async def report_version(kind: KIND, name: PERIOD, version: VERSION, who: Viewer) -> dict[str, Any]:
        reader(who)
        found = await asyncio.to_thread(versions.get, kind, name, version)
        if found is None:
            raise HTTPException(status_code=404, detail="not found")
        return {k: v for k, v in found.items() if k not in ("files", "snapshot")} | {"files": sorted(found["files"])}

    @api.get("/api/reports/{kind}/{name}/versions/{version}/files/{file}", response_model=Open,
             responses=errors(401, 403, 404))
    async def report_file(kind: KIND, name: PERIOD, version: VERSION, file: FILE, who: Viewer) -> dict[str, Any]:
        """One file of a version as it was issued (CSV or HTML text, in JSON: the API answers JSON only)."""
        reader(who)
        found = await asyncio.to_thread(versions.get, kind, name, version)
        if found is None or file not in found["files"]:
            raise HTTPException(status_code=404, detail="not found")
        return {"kind": kind, "name": name, "version": version, "file": file,
                "media_type": "text/html" if file.endswith(".html") else "text/csv", "content": found["files"][file]}

    @api.get("/api/review/appeals", response_model=Open, responses=errors(401, 403))
    async def appeals(who: Decider, status: Literal["open", "accepted", "rejected"] | None = None) -> dict[str, Any]:
        """Appeals with their evidence, window and deadline; late ones are escalated first (flag + audit)."""
        def build() -> list[dict[str, Any]]:
            store.appeals.escalate_late()
            return store.appeals.with_terms(status=status)
        return {"appeals": await asyncio.to_thread(build)}

    return api
