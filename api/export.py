"""Excel downloads of the alert wall and the scoreboard (the dashboard's export buttons).

``GET /api/export/alerts.xlsx?since_ms=&before_ms=&limit=`` and
``GET /api/export/agents.xlsx?date=&shift=&team_id=``: the same records, in the same scope, as
``/api/alerts`` and ``/api/agents``; Chinese headers, a frozen header row, numbers as numbers.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from api.auth import Auth
from api.deps import ID_PATTERN, EpochMs
from api.schemas import errors
from detectors import load_ruleset
from detectors.rubric import rubric_of
from zhijian.reports.rollup import KPI_COLUMNS, LABEL_COLUMNS
from zhijian.reports.xlsx import alerts_sheet, scoreboard_sheet, workbook_bytes
from zhijian.scoring import kpi
from zhijian.store.database import Database
from zhijian.store.users import Principal

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DAY = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")]


ID = Annotated[str | None, Query(min_length=1, max_length=128, pattern=ID_PATTERN)]
# a binary answer: the xlsx media type, no JSON schema
SHEET: dict[int | str, dict[str, Any]] = {200: {"content": {XLSX: {"schema": {"type": "string", "format": "binary"}}},
               "description": "an Excel workbook"}}


def _download(data: bytes, name: str) -> Response:
    return Response(data, media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def router(store: Database, auth: Auth) -> APIRouter:
    api = APIRouter(prefix="/api/export")
    viewer = Depends(auth.allowed("view"))
    floor = rubric_of(load_ruleset().rubric)

    @api.get("/alerts.xlsx", response_class=Response, responses={**SHEET, **errors(401, 403)})
    async def alerts(who: Principal = viewer, since_ms: EpochMs = None, before_ms: EpochMs = None,
                     limit: Annotated[int, Query(ge=1, le=20_000)] = 5000) -> Response:
        def build() -> bytes:
            rows = store.alerts.recent(limit=limit, before_ms=before_ms, since_ms=since_ms, **who.scope)
            states = store.claims.for_alerts([r["alert_id"] for r in rows])
            for row in rows:
                if row["alert_id"] in states:
                    row["action"] = states[row["alert_id"]]
            return workbook_bytes([alerts_sheet(rows, floor.zone)])
        stamp = datetime.datetime.now(floor.zone).strftime("%Y%m%d-%H%M")
        return _download(await asyncio.to_thread(build), f"alerts-{stamp}.xlsx")

    @api.get("/agents.xlsx", response_class=Response, responses={**SHEET, **errors(401, 403)})
    async def agents(who: Principal = viewer, date: DAY = None, shift: ID = None, team_id: ID = None) -> Response:
        day = date or datetime.datetime.now(floor.zone).date().isoformat()

        def build() -> bytes:
            rows = [r for r in store.scores.of_day(day) if (shift is None or r["shift"] == shift) and who.sees(r)
                    and (team_id is None or r["team_id"] == team_id)]
            board = kpi.scoreboard(rows, waiting_alerts=store.alerts.waiting_counts([r["conversation_id"]
                                                                                     for r in rows]),
                                   appeals=store.appeals.between(day, day))
            return workbook_bytes([scoreboard_sheet(board, KPI_COLUMNS, LABEL_COLUMNS)])
        return _download(await asyncio.to_thread(build), f"agents-{day}.xlsx")

    return api
