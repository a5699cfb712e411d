"""Search for the floor: ``GET /api/search?q=`` finds conversations by id, or by an order number or a keyword
in the stored transcript. Scoped like every list: a floor lead finds their team's conversations, an agent
their own; paged with ``before`` (the ``next_before`` of the previous page)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import ID_PATTERN, Viewer
from api.schemas import SearchOut, errors
from zhijian.store.search import Cursor, TranscriptSearch

# "<epoch ms>:<conversation id>", as handed out in next_before (18 digits: always inside BIGINT)
CURSOR_PATTERN = r"^[0-9]{1,18}:[^\x00-\x1f\x7f]{1,128}$"


def router(search: TranscriptSearch) -> APIRouter:
    api = APIRouter()

    @api.get("/api/search", response_model=SearchOut, responses=errors(401, 403))
    async def search_conversations(
        who: Viewer,
        q: Annotated[str, Query(min_length=1, max_length=200, pattern=ID_PATTERN,
                                description="a conversation id, an order number or words from the transcript")],
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        before: Annotated[str | None, Query(max_length=200, pattern=CURSOR_PATTERN,
                                            description="next_before of the previous page")] = None,
    ) -> dict[str, Any]:
        cursor = Cursor.parse(before) if before is not None else None
        scope = who.scope  # a floor lead's team, an agent's own: never wider
        results, more = await asyncio.to_thread(
            lambda: search.search(q, limit=limit, before=cursor, scope=scope))
        return {"results": results, "next_before": str(more) if more is not None else None}

    return api
