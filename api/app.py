"""The FastAPI application: health, REST, the alert WebSocket and the dashboard."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from api import alerts as alerts_api
from api import conversations as conversations_api
from api import metrics as metrics_api
from api import quality, session
from api.auth import Auth
from api.feed import Hub, TopicFeed
from api.publisher import Publisher
from api.rules import router as rules_router
from api.workers import Workers, WorkerUnavailable
from detectors import RuleBook
from stream.rules import follow, initial_ruleset
from zhijian.appstore import AppStore
from zhijian.settings import Settings
from zhijian.users import Principal

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
    workers = Workers(settings.worker_urls, settings.partitions)
    book = RuleBook(initial_ruleset(store))  # for per-shop rubrics; follows chat.rules like the workers
    auth = Auth(store, token)
    publisher = Publisher(settings.bootstrap_servers, settings.topics.rules)
    action_publisher = Publisher(settings.bootstrap_servers, settings.topics.alert_actions)
    # claims and resolutions reach every dashboard through the same hub as the alerts
    action_feed = TopicFeed(settings.bootstrap_servers, settings.topics.alert_actions, hub)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await asyncio.get_running_loop().run_in_executor(None, store.create_schema)
        feed.start()
        conversation_feed.start()
        action_feed.start()
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
            await workers.close()
            store.dispose()

    app = FastAPI(title="zhijian", lifespan=lifespan)
    app.state.hub = hub
    app.state.feed = feed
    app.state.store = store
    app.include_router(session.router(store, auth))
    app.include_router(alerts_api.router(store, auth, hub, action_publisher, recent))
    app.include_router(rules_router(store, publisher, auth))
    app.include_router(conversations_api.router(settings, store, auth, conversation_hub, book, workers))
    app.include_router(quality.router(store, book, auth))
    app.include_router(metrics_api.router({"alerts": hub, "conversations": conversation_hub},
                                          {"alerts": feed, "conversations": conversation_feed, "actions": action_feed},
                                          workers))

    async def worker_health() -> None:
        states = await workers.states(fresh=True)
        if not any(s.reachable for s in states):
            raise RuntimeError(f"no worker reachable of {len(states)}"
                               + (f" ({states[0].error})" if states else ""))

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

    viewer = Depends(auth.allowed("view"))

    @app.get("/api/tally")
    async def tally(who: Principal = viewer) -> Any:
        """Every agent's tally, gathered from the workers that own them, within the caller's scope."""
        try:
            bodies = await workers.gather(settings.topics.agent_activity, "/zhijian/tally/")
        except WorkerUnavailable as exc:
            return JSONResponse({"detail": f"tally unavailable: {exc.detail}"}, status_code=503,
                                headers={"Retry-After": str(exc.retry_after_s)})
        agents = {agent: view for body in bodies for agent, view in body["agents"].items() if who.sees(view)}
        return {"agents": dict(sorted(agents.items()))}

    if DASHBOARD_DIR.is_dir():
        app.mount("/", StaticFiles(directory=DASHBOARD_DIR, html=True), name="dashboard")
    return app
