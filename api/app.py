"""The FastAPI application: health, REST, the alert WebSocket and the dashboard."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from api import alerts as alerts_api
from api import check as check_api
from api import conversations as conversations_api
from api import export as export_api
from api import floor, quality, review, session
from api import ingest as ingest_api
from api.auth import Auth
from api.feed import Hub, TopicFeed
from api.publisher import Publisher
from api.rules import router as rules_router
from detectors import RuleBook
from stream.rules import follow, initial_ruleset
from zhijian.appstore import AppStore
from zhijian.settings import Settings

log = logging.getLogger(__name__)
DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "dashboard"


async def _check(name: str, probe: Any, problems: dict[str, str]) -> None:
    try:
        await asyncio.wait_for(probe(), 3.0)
    except Exception as exc:  # any failure means "down", with its reason
        problems[name] = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def create_app(settings: Settings, token: str) -> FastAPI:
    hub = Hub()
    recent = alerts_api.RecentAlerts()
    feed = TopicFeed(settings.bootstrap_servers, settings.topics.alerts, hub, transform=recent.remember)
    conversation_hub = Hub()
    conversation_feed = TopicFeed(settings.bootstrap_servers, settings.topics.conversations, conversation_hub,
                                  transform=conversations_api.without_transcript)
    store = AppStore(settings.database_url)
    book = RuleBook(initial_ruleset(store))  # for per-shop rubrics; follows chat.rules like the workers
    auth = Auth(store, token)
    publisher = Publisher(settings.bootstrap_servers, settings.topics.rules)
    action_publisher = Publisher(settings.bootstrap_servers, settings.topics.alert_actions)
    # claims and resolutions reach every dashboard through the same hub as the alerts
    action_feed = TopicFeed(settings.bootstrap_servers, settings.topics.alert_actions, hub)
    ingest = ingest_api.Ingest(settings)  # POST /api/events: its own producer, started below
    sources = ingest_api.SourceResolver(store, auth, book)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await asyncio.get_running_loop().run_in_executor(None, store.create_schema)
        feed.start()
        conversation_feed.start()
        action_feed.start()
        await ingest.start()
        follower = asyncio.create_task(follow(settings.bootstrap_servers, settings.topics.rules, book))
        try:
            yield
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
            await feed.stop()
            await conversation_feed.stop()
            await action_feed.stop()
            await publisher.stop()
            await action_publisher.stop()
            await ingest.stop()
            store.dispose()

    app = FastAPI(title="zhijian", lifespan=lifespan)
    app.state.hub = hub
    app.state.feed = feed
    app.state.store = store
    app.include_router(session.router(store, auth))
    app.include_router(alerts_api.router(store, auth, hub, action_publisher, recent))
    app.include_router(rules_router(store, publisher, auth))
    app.include_router(conversations_api.router(settings, store, auth, conversation_hub, book))
    app.include_router(quality.router(store, book, auth))
    app.include_router(review.router(store, book, auth))
    app.include_router(ingest_api.router(ingest, sources, auth))
    app.include_router(check_api.router(book, auth, sources))
    app.include_router(export_api.router(store, auth))
    app.include_router(floor.router(store, auth))

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

    @app.get("/api/tally", dependencies=[Depends(auth.allowed("view"))])
    async def tally() -> Any:
        async with httpx.AsyncClient(timeout=3.0) as client:
            response = await client.get(f"{settings.worker_url}/zhijian/tally/")
        return JSONResponse(response.json(), status_code=response.status_code)

    if DASHBOARD_DIR.is_dir():
        app.mount("/", StaticFiles(directory=DASHBOARD_DIR, html=True), name="dashboard")
    return app
