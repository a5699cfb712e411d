"""``POST /api/check``: the pre-send check of a draft reply.

An agent workbench posts the draft before sending it and gets back the findings and the alerts
the live pipeline would raise for that message, so it can warn (an alert) or block (a fatal
finding: 禁忌用语, a leaked phone number …) before the customer sees it. The draft goes through
the pipeline's own conversation engine (``stream.engine.conversation.process_event``) with the
rule book the API follows live, so the answer is the pipeline's, not a second implementation.
Nothing is produced or stored. Auth: any signed-in user, or an ingest source's token.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from api.auth import Auth, token_from
from api.ingest import SourceResolver
from api.schemas import CheckOut, errors
from detectors import RuleBook
from stream.engine.conversation import process_event
from zhijian.core.contract import ChatEvent

MAX_DRAFT_CHARS = 10_000


class CheckIn(BaseModel):
    sender: Literal["agent", "customer"] = "agent"
    shop_id: str = Field(min_length=1, max_length=128)
    text: str = Field(max_length=MAX_DRAFT_CHARS)
    conversation_id: str | None = Field(default=None, max_length=128)
    agent_id: str | None = Field(default=None, max_length=128)
    team_id: str | None = Field(default=None, max_length=128)


def check_draft(book: RuleBook, body: CheckIn, *, now_ms: int, who: str | None = None) -> dict[str, Any]:
    """What the pipeline raises for this one message in a fresh conversation (in-process, no I/O)."""
    agent = body.agent_id or who or "draft"
    event = ChatEvent(message_id=f"draft-{uuid.uuid4().hex}", conversation_id=body.conversation_id or "draft",
                      shop_id=body.shop_id, team_id=body.team_id, agent_id=agent,
                      customer_id="draft" if body.sender == "customer" else None, sender=body.sender, type="message",
                      text=body.text, ts_ms=now_ms)
    outcome = process_event(None, event, now_ms=now_ms, book=book)
    marks = outcome.lines[0].marks if outcome.lines else ()
    findings = [{"label": m.label, "rule_id": m.rule_id, "start": m.start, "end": m.end,
                 "matched": body.text[m.start:m.end], "severity": m.severity, "fatal": m.fatal,
                 "counted": m.counted, "source": m.source} for m in marks]
    alerts = [{key: value for key, value in a.to_dict().items() if key not in ("alert_id", "message_id", "ts",
                                                                                 "ts_ms", "detected_at", "state",
                                                                                 "revision")}
              for a in outcome.alerts]
    fatal = any(f["fatal"] and f["counted"] for f in findings)
    return {"verdict": "block" if fatal else "warn" if alerts or findings else "ok", "findings": findings,
            "alerts": alerts, "ruleset": book.ruleset.version}


def router(book: RuleBook, auth: Auth, sources: SourceResolver) -> APIRouter:
    api = APIRouter()

    def caller() -> Callable[[Request], str]:
        def dependency(request: Request) -> str:
            token = token_from(request.headers)
            principal = auth.principal(token)
            if principal is not None:
                return principal.agent_id or principal.username
            source = sources.resolve(token)
            if source is not None:
                return f"source:{source.name}"
            raise HTTPException(status_code=401, detail="missing or invalid bearer token",
                                headers={"WWW-Authenticate": "Bearer"})
        return dependency

    @api.post("/api/check", response_model=CheckOut, responses=errors(401))
    async def check(body: CheckIn, who: str = Depends(caller())) -> dict[str, Any]:
        return check_draft(book, body, now_ms=int(time.time() * 1000),
                           who=None if who.startswith("source:") else who)

    return api
