"""The FastAPI application: health, REST, the alert WebSocket and the dashboard."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import alerts as alerts_api
from api import check as check_api
from api import conversations as conversations_api
from api import export as export_api
from api import floor, quality, review, session, store_errors
from api import ingest as ingest_api
from api import metrics as metrics_api
from api import search as search_api
from api.auth import Auth
from api.connections import Connections
from api.deps import Viewer
from api.feed import Hub, TopicFeed
from api.login_guard import LoginGuard
from api.publisher import Publisher
from api.rules import router as rules_router
from api.schemas import HealthOut, TallyOut, errors
from api.security import SecurityHeaders, install_log_redaction
from api.sockets import heartbeat_frame
from api.workers import Workers, WorkerUnavailable
from detectors import RuleBook
from zhijian.core.settings import Settings
from zhijian.kafka.rules import follow, initial_ruleset
from zhijian.store.database import Database

log = logging.getLogger(__name__)
DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "dashboard"


async def _check(name: str, probe: Any, problems: dict[str, str]) -> None:
    try:
        await asyncio.wait_for(probe(), 3.0)
    except Exception as exc:  # any failure means "down", with its reason
        problems[name] = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


@dataclass(frozen=True)
class Kafka:
    """How the app reaches the broker: its feeds, publishers, the ingest producer and the rule-set follower.
    The defaults are the real ones; in-process tests pass in-memory stand-ins (tests/factories.py)."""

    feed: Callable[..., TopicFeed] = TopicFeed
    publisher: Callable[[str, str], Publisher] = Publisher
    ingest: Callable[[Settings], ingest_api.Ingest] = ingest_api.Ingest
    follow: Callable[[str, str, RuleBook], Coroutine[Any, Any, None]] = follow


def create_app(settings: Settings, token: str, kafka: Kafka | None = None) -> FastAPI:
    kafka = kafka or Kafka()
    hub = Hub()
    recent = alerts_api.RecentAlerts()
    # from a little before the end: a socket's replay needs the recent alerts SQL may not have yet
    feed = kafka.feed(settings.bootstrap_servers, settings.topics.alerts, hub, transform=recent.remember,
                      backfill=1000)
    conversation_hub = Hub()
    conversation_feed = kafka.feed(settings.bootstrap_servers, settings.topics.conversations, conversation_hub,
                                   transform=conversations_api.without_transcript)
    store = Database(settings.database_url)
    workers = Workers(settings.worker_urls, settings.partitions)
    book = RuleBook(initial_ruleset(store))  # for per-shop rubrics; follows chat.rules like the workers
    auth = Auth(store, token)
    connections = Connections(store.sessions.live)
    guard = LoginGuard()
    publisher = kafka.publisher(settings.bootstrap_servers, settings.topics.rules)
    action_publisher = kafka.publisher(settings.bootstrap_servers, settings.topics.alert_actions)
    # claims and resolutions reach every dashboard through the same hub as the alerts
    action_feed = kafka.feed(settings.bootstrap_servers, settings.topics.alert_actions, hub)
    ingest = kafka.ingest(settings)  # POST /api/events: its own producer, started below
    sources = ingest_api.SourceResolver(store, auth, book)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        install_log_redaction()  # after uvicorn configured its loggers
        await asyncio.get_running_loop().run_in_executor(None, store.upgrade)
        connections.start()
        feed.start()
        conversation_feed.start()
        action_feed.start()
        await ingest.start()
        follower = asyncio.create_task(kafka.follow(settings.bootstrap_servers, settings.topics.rules, book))
        try:
            yield
        finally:
            follower.cancel()
            await connections.stop()
            guard.close()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
            await feed.stop()
            await conversation_feed.stop()
            await action_feed.stop()
            await publisher.stop()
            await action_publisher.stop()
            await workers.close()
            await ingest.stop()
            store.dispose()

    app = FastAPI(title="zhijian", lifespan=lifespan)
    app.add_middleware(SecurityHeaders)

    store_errors.install(app)  # the store's refusals, by kind: 404, 409 or 422

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """Every 422 in FastAPI's own shape (a list of errors), whoever raised it."""
        if exc.status_code == 422 and not isinstance(exc.detail, list):
            detail = [{"type": "value_error", "loc": ["body"], "msg": str(exc.detail), "input": None}]
            return JSONResponse({"detail": detail}, status_code=422, headers=exc.headers)
        if exc.status_code == 400 and "parsing the body" in str(exc.detail):  # e.g. not UTF-8: like bad JSON
            detail = [{"type": "json_invalid", "loc": ["body"], "msg": "the body is not valid JSON", "input": None}]
            return JSONResponse({"detail": detail}, status_code=422)
        return await http_exception_handler(request, exc)
    app.state.hub = hub
    app.state.feed = feed
    app.state.store = store
    app.state.auth = auth
    app.state.connections = connections

    async def conversation_heartbeat() -> dict[str, Any]:
        return heartbeat_frame(conversation_feed.connected)
    app.state.conversation_heartbeat = conversation_heartbeat
    app.include_router(session.router(store, auth, connections, guard))
    app.include_router(alerts_api.router(store, auth, hub, action_publisher, recent,
                                         feed_ok=lambda: feed.connected))
    app.include_router(rules_router(store, publisher, auth))
    app.include_router(conversations_api.router(settings, store, auth, conversation_hub, book, workers),
                       responses=errors(401, 403, 404, 503))
    app.include_router(quality.router(store, book, auth))
    app.include_router(review.router(store, book, auth))
    app.include_router(ingest_api.router(ingest, sources, auth))
    app.include_router(check_api.router(book, auth, sources))
    app.include_router(export_api.router(store, auth))
    app.include_router(floor.router(store, auth))
    app.include_router(search_api.router(store.search))
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

    @app.get("/healthz", response_model=HealthOut,
             responses={503: {"model": HealthOut, "description": "a component is down (named, with the reason)"}})
    async def healthz() -> JSONResponse:
        problems: dict[str, str] = {}
        await asyncio.gather(
            _check("broker", feed.check_broker, problems),
            _check("worker", worker_health, problems),
            _check("database", database_health, problems),
        )
        if not feed.connected:
            problems["feed"] = feed.status  # this process's live alerts: sockets get nothing without it
        components = {name: problems.get(name, "ok") for name in ("broker", "worker", "database", "feed")}
        code = 503 if problems else 200
        return JSONResponse({"ok": not problems, "components": components}, status_code=code)

    @app.get("/api/tally", response_model=TallyOut, responses=errors(401, 403, 503))
    async def tally(who: Viewer) -> Any:
        """Every agent's live tally, gathered from the workers that own them, narrowed to the caller's scope."""
        try:
            bodies = await workers.gather(settings.topics.agent_activity, "/zhijian/tally/")
            agents = {agent: tally for body in bodies for agent, tally in body["agents"].items()}
        except WorkerUnavailable as exc:
            return JSONResponse({"detail": f"the tally is not available: {exc.detail}"}, status_code=503,
                                headers={"Retry-After": str(exc.retry_after_s)})
        except (ValueError, KeyError, TypeError, AttributeError):
            return JSONResponse({"detail": "the workers' tally is not available"}, status_code=503)
        return {"agents": {agent: tally for agent, tally in sorted(agents.items())
                           if isinstance(tally, dict) and who.sees(tally)}}

    if DASHBOARD_DIR.is_dir():
        app.mount("/", StaticFiles(directory=DASHBOARD_DIR, html=True), name="dashboard")
    return app
