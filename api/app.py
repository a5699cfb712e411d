"""The FastAPI application: health, REST, the alert WebSocket and the dashboard."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI, Query, WebSocket
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from api import conversations as conversations_api
from api import quality
from api.auth import TokenAuth
from api.feed import Hub, TopicFeed
from api.rules import RulesPublisher
from api.rules import router as rules_router
from api.sockets import serve
from detectors import RuleBook
from stream.rules import follow, initial_ruleset
from zhijian.quality_store import QualityStore
from zhijian.settings import Settings

log = logging.getLogger(__name__)
DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "dashboard"


async def _check(name: str, probe: Any, problems: dict[str, str]) -> None:
    try:
        await asyncio.wait_for(probe(), 3.0)
    except Exception as exc:  # any failure means "down", with its reason
        problems[name] = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def create_app(settings: Settings, token: str) -> FastAPI:
    auth = TokenAuth([token])
    hub = Hub()
    feed = TopicFeed(settings.bootstrap_servers, settings.topics.alerts, hub)
    conversation_hub = Hub()
    conversation_feed = TopicFeed(settings.bootstrap_servers, settings.topics.conversations, conversation_hub,
                                  transform=conversations_api.without_transcript)
    store = QualityStore(settings.database_url)
    book = RuleBook(initial_ruleset(store))  # for per-shop rubrics; follows chat.rules like the workers
    publisher = RulesPublisher(settings.bootstrap_servers, settings.topics.rules)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await asyncio.get_running_loop().run_in_executor(None, store.create_schema)
        feed.start()
        conversation_feed.start()
        follower = asyncio.create_task(follow(settings.bootstrap_servers, settings.topics.rules, book))
        try:
            yield
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
            await feed.stop()
            await conversation_feed.stop()
            await publisher.stop()
            store.dispose()

    app = FastAPI(title="zhijian", lifespan=lifespan)
    app.state.hub = hub
    app.state.feed = feed
    app.state.store = store
    authorised = [Depends(auth.require)]
    app.include_router(rules_router(settings, store, publisher, [auth.require]))
    app.include_router(conversations_api.router(settings, store, auth, conversation_hub))
    app.include_router(quality.router(store, book, [auth.require]))

    async def worker_health() -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=2.0) as client:
            response = await client.get(f"{settings.worker_url}/zhijian/health/")
            response.raise_for_status()
            body: dict[str, Any] = response.json()
            return body

    async def database_health() -> None:
        await asyncio.get_running_loop().run_in_executor(None, store.ping)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        problems: dict[str, str] = {}
        await asyncio.gather(
            _check("broker", feed.check_broker, problems),
            _check("worker", worker_health, problems),
            _check("database", database_health, problems),
        )
        components = {name: problems.get(name, "ok") for name in ("broker", "worker", "database")}
        code = 503 if problems else 200
        return JSONResponse({"ok": not problems, "components": components}, status_code=code)

    @app.get("/api/alerts", dependencies=authorised)
    async def recent_alerts(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before_ms: int | None = None,
        since_ms: int | None = None,
    ) -> dict[str, Any]:
        rows = await asyncio.get_running_loop().run_in_executor(
            None, lambda: store.recent_alerts(limit=limit, before_ms=before_ms, since_ms=since_ms)
        )
        return {"alerts": rows}

    @app.get("/api/tally", dependencies=authorised)
    async def tally() -> Any:
        async with httpx.AsyncClient(timeout=3.0) as client:
            response = await client.get(f"{settings.worker_url}/zhijian/tally/")
        return JSONResponse(response.json(), status_code=response.status_code)

    @app.websocket("/ws/alerts")
    async def alerts_socket(websocket: WebSocket) -> None:
        await serve(websocket, auth, hub)

    if DASHBOARD_DIR.is_dir():
        app.mount("/", StaticFiles(directory=DASHBOARD_DIR, html=True), name="dashboard")
    return app
