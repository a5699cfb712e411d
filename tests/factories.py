"""Shared test factories, in one place: chat events (engine and wire), scripted conversations, alerts,
users and sessions, the store fixture, and the API app built in process with in-memory Kafka stand-ins.

Test modules import from here (and from ``tests.integration.harness`` for real processes), never from
each other. The store is only reached through the fixtures and helpers below, so a change of the storage
interface changes this module, not every test."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from detectors import RuleBook, load_ruleset, parse_ruleset
from detectors.rubric import rubric_of
from stream.engine.conversation import Outcome, process_event, process_tick
from stream.engine.records import Tick, TranscriptLine
from stream.engine.state import ConversationState
from zhijian.core.contract import ChatEvent
from zhijian.scoring import rubric_lookup
from zhijian.store.database import Database
from zhijian.store.schema import metadata

T0 = 1_795_000_000_000  # 2026-11-18 on the floor's clock (Asia/Shanghai)
POSTGRES_URL = os.environ.get("ZHIJIAN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI") == "true"


def missing(component: str, why: str) -> None:
    """Fail under CI; outside CI, skip with the reason (a developer without the component)."""
    message = f"{component} unavailable: {why}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)  # outside CI only


# ---------------------------------------------------------------------------------------------- the store

@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[Database]:
    """An empty database with the whole schema: SQLite, and PostgreSQL (CI runs both)."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path}/zhijian.db")
    else:
        db = Database(POSTGRES_URL)
        try:
            db.ping()
        except Exception as exc:
            missing("PostgreSQL", str(exc))
        metadata.drop_all(db.engine)
    db.upgrade()
    yield db
    if request.param == "postgresql":
        metadata.drop_all(db.engine)
    db.dispose()


# ------------------------------------------------------------------------------------ chat events (engine)

def ev(mid: str, sender: str, at_s: float, text: str = "您好", *, etype: str = "message", agent: str | None = "A",
       team: str | None = "t1", shop: str = "s1") -> ChatEvent:
    """An event of conversation c1, ``at_s`` seconds after T0 (a customer's has no agent)."""
    if sender == "customer":
        agent = None
    return ChatEvent(message_id=mid, conversation_id="c1", shop_id=shop, team_id=team, agent_id=agent,
                     customer_id="u1", sender=sender, type=etype, text=text, ts_ms=T0 + int(at_s * 1000))


class Run:
    """Feeds events (and ticks) through the engine, collecting everything it emits."""

    def __init__(self, book: RuleBook | None = None) -> None:
        self.state: ConversationState | None = None
        self.book = book
        self.outcomes: list[Outcome] = []

    def feed(self, *events: ChatEvent, now_s: float | None = None) -> Run:
        for event in events:
            now = T0 + int((now_s if now_s is not None else (event.ts_ms - T0) / 1000 + 0.2) * 1000)
            self._keep(process_event(self.state, event, now_ms=now, book=self.book))
        return self

    def tick(self, kind: str, now_s: float, **fields: Any) -> Outcome:
        outcome = process_tick(self.state, Tick(kind, **fields), now_ms=T0 + int(now_s * 1000), book=self.book)
        self._keep(outcome)
        return outcome

    def _keep(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        self.state = outcome.state

    @property
    def alerts(self) -> list[Any]:
        return [a for o in self.outcomes for a in o.alerts]

    @property
    def lines(self) -> list[TranscriptLine]:
        return [line for o in self.outcomes for line in o.lines]

    @property
    def snapshots(self) -> list[dict[str, Any]]:
        return [s for o in self.outcomes for s in o.snapshots]

    def end(self, at_s: float) -> dict[str, Any]:
        self.feed(ev(f"end-{at_s}", "system", at_s, "", etype="conversation_ended", agent=None, team=None))
        final = self.snapshots[-1]
        assert final["final"] and final["status"] == "closed"
        return final


def assigned_event(mid: str, sender: str, at_s: float, text: str = "", *, conv: str = "c-a09",
                   etype: str = "message", agent: str | None = "a09") -> ChatEvent:
    """An event of a conversation assigned to agent a09 of team t1, shop s1."""
    return ChatEvent(message_id=mid, conversation_id=conv, shop_id="s1", team_id="t1", agent_id=agent,
                     customer_id="u1", sender=sender, type=etype, text=text, ts_ms=T0 + int(at_s * 1000))


def run_to_close(*events: ChatEvent) -> tuple[dict[str, Any], list[Any]]:
    """Every event through the engine; returns the closing summary and the credits."""
    state: ConversationState | None = None
    summaries: list[dict[str, Any]] = []
    credits: list[Any] = []
    for e in events:
        outcome = process_event(state, e, now_ms=e.ts_ms + 200)
        state = outcome.state
        summaries.extend(s for s in outcome.snapshots if s.get("final"))
        credits.extend(outcome.credits)
    assert len(summaries) == 1
    return summaries[0], credits


def unanswered_chat(conv: str = "c-a09") -> tuple[dict[str, Any], list[Any]]:
    """Two customer messages 20 s apart, assigned to a09, ended 90 s later, never answered."""
    return run_to_close(assigned_event("m1", "customer", 0, "在吗？", conv=conv),
                        assigned_event("m2", "customer", 20, "有人吗？", conv=conv),
                        assigned_event("end", "system", 110, etype="conversation_ended", agent=None, conv=conv))


# ------------------------------------------------------------------------ scripted, scored conversations

RUBRIC = rubric_of(load_ruleset().rubric)
DAY = RUBRIC.day(T0)  # 2026-11-18 on the floor's clock (Asia/Shanghai)
LINES: dict[str, list[Any]] = {}  # each scripted conversation's transcript lines, as the engine emits them


def rubric_for(_shop: str) -> Any:
    return RUBRIC


def conversation(conv: str, agent: str, start_s: float, *, bad: str | None = None, team: str = "t1",
                 slow: bool = False) -> dict[str, Any]:
    """A scripted conversation closed by conversation_ended; ``bad`` adds one agent message. Returns the
    closing summary (its transcript lines are kept in ``LINES`` for ``save``)."""
    def e(mid: str, sender: str, at: float, text: str = "您好", **kw: Any) -> Any:
        event = ev(f"{conv}-{mid}", sender, start_s + at, text, **{"agent": agent, "team": team, **kw})
        return event.__class__(**{**event.to_dict(), "conversation_id": conv})

    events = [e("c1", "customer", 0, "在吗"), e("a1", "agent", 22 if slow else 5, "您好，很高兴为您服务"),
              e("c2", "customer", 30, "有货吗"), e("a2", "agent", 35, "您好，有货的，请您放心")]
    if bad:
        events += [e("c3", "customer", 40, "好"), e("a3", "agent", 45, bad)]
    events.append(e("a9", "agent", 60, "感谢您的耐心，祝您生活愉快"))
    run = Run()
    for event in events:
        run.feed(event)
    end = e("end", "system", 70, "", etype="conversation_ended", agent=None, team=None)
    run.feed(end)
    LINES[conv] = run.lines
    return run.snapshots[-1]


def save(store: Database, summaries: list[dict[str, Any]]) -> int:
    """What the worker's persist agents do: the transcript (with message findings), then the summaries."""
    store.messages.save_transcript([line for s in summaries for line in LINES[s["conversation_id"]]], rubric_for)
    return store.scores.save_scored(summaries, rubric_for)


def book_with_human_item() -> RuleBook:
    """The seed, but shop s1's 服务态度 keeps 10 of its 30 points for a reviewer (准确全面)."""
    document = copy.deepcopy(dict(load_ruleset().document))
    sections = copy.deepcopy(document["rubric"]["sections"])
    sections[0]["human_items"] = {"准确全面": 10}
    document["shops"] = {"s1": {"rubric": {"sections": sections}}}
    return RuleBook(parse_ruleset(document))


def review_event(conv: str, mid: str, sender: str, at_s: float, text: str = "", etype: str = "message") -> ChatEvent:
    return ChatEvent(message_id=mid, conversation_id=conv, shop_id="s1", team_id="t1", agent_id="a09",
                     customer_id="u1", sender=sender, type=etype, text=text, ts_ms=T0 + int(at_s * 1000))


def save_run(store: Database, book: RuleBook, events: Iterable[ChatEvent]) -> None:
    """Events through the engine; the transcript and the closing summaries into SQL, as the worker stores them."""
    state: ConversationState | None = None
    lines: list[TranscriptLine] = []
    summaries: list[dict[str, Any]] = []
    for e in events:
        outcome = process_event(state, e, now_ms=e.ts_ms + 200, book=book)
        state = outcome.state
        lines.extend(outcome.lines)
        summaries.extend(s for s in outcome.snapshots if s.get("final"))
    store.messages.save_transcript(lines, rubric_lookup(book))
    store.scores.save_scored(summaries, rubric_lookup(book))


def stored(store: Database, book: RuleBook, conv: str, rude: str) -> None:
    """One conversation of agent a09 (team t1, shop s1) through the engine, its transcript and closing
    summary into SQL; ``rude`` is the agent's second message."""
    save_run(store, book, (review_event(conv, "c1", "customer", 0, "在吗"),
                           review_event(conv, "a1", "agent", 5, "您好，很高兴为您服务"),
                           review_event(conv, "c2", "customer", 10, "有货吗"),
                           review_event(conv, "a2", "agent", 15, rude),
                           review_event(conv, "a3", "agent", 20, "感谢您的耐心，祝您生活愉快"),
                           review_event(conv, "end", "system", 30, etype="conversation_ended")))


# ----------------------------------------------------------------------------------------------- alerts

def alert(alert_id: str, ts_ms: int, **extra: Any) -> dict[str, Any]:
    """An alert record as the worker emits it (team t1, agent a1, conversation c1 unless ``extra`` says)."""
    base: dict[str, Any] = {
        "alert_id": alert_id, "rule": "banned_word", "severity": "critical", "fatal": True,
        "conversation_id": "c1", "shop_id": "s1", "agent_id": "a1", "team_id": "t1", "message_id": f"m-{alert_id}",
        "excerpt": "哦，好的", "span": [0, 1], "ts": "x", "ts_ms": ts_ms, "detected_at": "y", "detail": {},
    }
    base.update(extra)
    return base


# --------------------------------------------------------------------------------------- wire payloads

def sync_msg_body(now_s: int) -> dict[str, object]:
    """A 微信客服 sync_msg answer in the documented shape: a customer's text, the servicer's reply,
    an image and a recall event (skipped)."""
    base = {"open_kfid": "wkAJ2GCAAASSm4", "external_userid": "wmAJ2GCAAAme1X"}
    return {"errcode": 0, "errmsg": "ok", "next_cursor": "4gw7MepFLfgF2VC5npN", "has_more": 0, "msg_list": [
        {**base, "msgid": "m1", "send_time": now_s, "origin": 3, "servicer_userid": "zhangsan",
         "msgtype": "text", "text": {"content": "我的订单怎么还没发货"}},
        {**base, "msgid": "m2", "send_time": now_s + 5, "origin": 5, "servicer_userid": "zhangsan",
         "msgtype": "text", "text": {"content": "哦，这个不知道"}},
        {**base, "msgid": "m3", "send_time": now_s + 6, "origin": 3, "msgtype": "image",
         "image": {"media_id": "MEDIA"}},
        {"msgtype": "event", "event": {"event_type": "user_recall_msg", **base, "recall_msgid": "m1"}},
    ]}


def wire_event(mid: str, conv: str, sender: str, text: str, *, agent: str | None = "a1", team: str = "t1",
               ts_ms: int = T0, shop: str = "s1") -> dict[str, Any]:
    """A chat event as a platform sends it (POST /api/events, chat.messages)."""
    return {"message_id": mid, "conversation_id": conv, "shop_id": shop, "team_id": team, "agent_id": agent,
            "customer_id": "cust-1", "sender": sender, "type": "message", "text": text, "ts": ts_ms}


# ----------------------------------------------------------------------------------- users and sessions

def token(store: Database, user: str, password: str) -> dict[str, str]:
    """The Authorization header of a fresh session of ``user``."""
    login = store.sessions.login(user, password)
    assert login is not None
    return {"authorization": f"Bearer {login[0]}"}


def bearer(value: str) -> dict[str, str]:
    return {"authorization": f"Bearer {value}"}


@dataclass(frozen=True)
class Person:
    """A signed-in user of the in-process app: their role, scope and Authorization header."""

    username: str
    role: str
    team_id: str | None
    agent_id: str | None
    headers: dict[str, str]


def sign_in(store: Database, username: str, role: str, *, team_id: str | None = None,
            agent_id: str | None = None) -> Person:
    password = f"{username}-pw-7b1d"
    store.users.add(username, password, role=role, team_id=team_id, agent_id=agent_id)
    return Person(username, role, team_id, agent_id, token(store, username, password))


# ------------------------------------------------------------------- the API in process, Kafka in memory

class FakeFeed:
    """api.feed.TopicFeed without a broker: ``deliver`` hands a record to the hub as the feed would."""

    def __init__(self, bootstrap_servers: str, topic: str, hub: Any, transform: Callable[[str], str] | None = None,
                 **_: Any) -> None:
        self.topic, self.hub, self.transform = topic, hub, transform
        self.connected = True
        self.problem: str | None = None
        self.delivered = 0

    def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    @property
    def status(self) -> str:
        return "ok" if self.connected else (self.problem or "not connected")

    async def check_broker(self, timeout_s: float = 2.0) -> None:
        if not self.connected:
            raise ConnectionError("alert feed is not connected to the broker")

    def deliver(self, payload: str) -> None:
        """Call on the app's event loop (``portal.call``)."""
        if self.transform is not None:
            payload = self.transform(payload)
        self.hub.publish(payload)
        self.delivered += 1


class FakePublisher:
    """api.publisher.Publisher that keeps what it was asked to publish."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self.topic = topic
        self.published: list[tuple[str, dict[str, Any]]] = []

    async def publish(self, key: str, value: dict[str, Any]) -> None:
        self.published.append((key, value))

    async def stop(self) -> None:
        pass


class FakeProducer:
    """The slice of AIOKafkaProducer api.ingest uses: ``send`` returns an awaitable delivery."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None]] = []

    async def send(self, topic: str, value: bytes, key: bytes | None = None, **_: Any) -> asyncio.Future[None]:
        self.sent.append((topic, value, key))
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        delivered.set_result(None)  # the broker took it at once
        return delivered

    async def stop(self) -> None:
        pass


def fake_ingest(settings: Any) -> Any:
    from api.ingest import Ingest

    class InMemoryIngest(Ingest):
        async def start(self) -> None:
            self.producer = FakeProducer()  # type: ignore[assignment]

    return InMemoryIngest(settings)


async def no_follow(bootstrap_servers: str, topic: str, book: RuleBook) -> None:
    await asyncio.Event().wait()  # until cancelled at shutdown


@dataclass
class Kit:
    """Everything an in-process API test needs: the TestClient (lifespan entered), the app's own store,
    the admin token, and the Kafka stand-ins."""

    client: Any
    store: Database
    admin: dict[str, str]
    feeds: list[FakeFeed]
    publishers: list[FakePublisher]
    people: Any = field(default_factory=dict)  # People: a user of every role, made on first use

    def feed(self, topic_suffix: str) -> FakeFeed:
        return next(f for f in self.feeds if f.topic.endswith(topic_suffix))

    def publisher(self, topic_suffix: str) -> FakePublisher:
        return next(p for p in self.publishers if p.topic.endswith(topic_suffix))

    def push(self, topic_suffix: str, record: dict[str, Any]) -> None:
        """A record arriving on a topic's feed, fanned out to the sockets (on the app's loop)."""
        self.client.portal.call(self.feed(topic_suffix).deliver, json.dumps(record, ensure_ascii=False))


ADMIN_TOKEN = "admin-token-for-in-process-tests"
USERS = {  # who ``Kit.people[...]`` is: teams t1 and t2, agents a1 (t1) and a2 (t2)
    "supervisor": ("sup", "supervisor", None, None),
    "floor_lead": ("lead-t1", "floor_lead", "t1", None),
    "qa": ("qa1", "qa", None, None),
    "agent": ("a1", "agent", "t1", "a1"),
    "admin_user": ("boss", "admin", None, None),
    "other_lead": ("lead-t2", "floor_lead", "t2", None),
    "other_agent": ("a2", "agent", "t2", "a2"),
}


class People:
    """The signed-in users of an in-process app, each made (argon2: slow) the first time it is asked for."""

    def __init__(self, store: Database) -> None:
        self.store = store
        self._made: dict[str, Person] = {}

    def __getitem__(self, who: str) -> Person:
        if who not in self._made:
            username, role, team_id, agent_id = USERS[who]
            self._made[who] = sign_in(self.store, username, role, team_id=team_id, agent_id=agent_id)
        return self._made[who]


@contextlib.contextmanager
def in_process_api(workdir: Path) -> Iterator[Kit]:
    """The whole API app from ``api.app.create_app`` on a SQLite file, no broker and no worker (the
    worker URL refuses: routes that ask it answer 503), with a user of every role (teams t1/t2)."""
    from fastapi.testclient import TestClient

    from api.app import Kafka, create_app
    from zhijian.core.settings import Settings

    feeds: list[FakeFeed] = []
    publishers: list[FakePublisher] = []

    def feed(*args: Any, **kwargs: Any) -> FakeFeed:
        made = FakeFeed(*args, **kwargs)
        feeds.append(made)
        return made

    def publisher(bootstrap: str, topic: str) -> FakePublisher:
        made = FakePublisher(bootstrap, topic)
        publishers.append(made)
        return made

    settings = Settings(database_url=f"sqlite:///{workdir / 'api.db'}", data_dir=workdir,
                        kafka_broker="127.0.0.1:9", worker_urls_raw="http://127.0.0.1:9",
                        topic_prefix="inproc.", admin_token=ADMIN_TOKEN)
    app = create_app(settings, ADMIN_TOKEN, Kafka(feed=feed, publisher=publisher, ingest=fake_ingest,
                                                  follow=no_follow))
    with TestClient(app) as client:
        store: Database = app.state.store
        kit = Kit(client, store, bearer(ADMIN_TOKEN), feeds, publishers)
        kit.people = People(store)
        yield kit


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Kit]:
    """The API in process for one test (it may change anything)."""
    with in_process_api(tmp_path) as kit:
        yield kit


@pytest.fixture(scope="module")
def shared_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kit]:
    """The API in process shared by a module's tests, with ``seed_floor`` stored: for tests that sign
    nobody out and change no state another test reads (users are slow to make: argon2)."""
    with in_process_api(tmp_path_factory.mktemp("api")) as kit:
        seed_floor(kit.store)
        yield kit

class AsgiClient:
    """Requests to an app in process over httpx's ASGI transport (one event loop per request; for apps
    without a lifespan, e.g. a few routers on a FastAPI())."""

    __test__ = False

    def __init__(self, app: Any) -> None:
        self.app = app
        self.day = ""

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        import httpx

        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as http:
                return await http.request(method, url, **kwargs)
        return asyncio.run(send())

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.request("POST", url, **kwargs)


@dataclass(frozen=True)
class Floor:
    """What ``seed_floor`` stored: per team, an alert, a closed scored conversation and one of its findings."""

    day: str
    alerts: dict[str, str]  # team → alert id
    conversations: dict[str, str]  # team → conversation id
    findings: dict[str, str]  # team → finding id


def seed_floor(store: Database) -> Floor:
    """Team t1 (agent a1) and team t2 (agent a2): an alert each, and a closed conversation each with a
    conflict finding, scored for ``DAY`` — as the worker's persistence would have written them."""
    summaries = {"t1": conversation("k-t1", "a1", 0, team="t1", bad="嫌贵别买"),
                 "t2": conversation("k-t2", "a2", 100, team="t2", bad="嫌贵别买")}
    save(store, list(summaries.values()))
    store.conversations.save(list(summaries.values()))
    store.alerts.save([alert("al-t1", T0, team_id="t1", agent_id="a1", conversation_id="k-t1"),
                       alert("al-t2", T0 + 1, team_id="t2", agent_id="a2", conversation_id="k-t2")])
    findings = {team: next(f["finding_id"] for f in store.findings.find(conversation_id=s["conversation_id"]))
                for team, s in summaries.items()}
    return Floor(DAY, {"t1": "al-t1", "t2": "al-t2"}, {team: s["conversation_id"] for team, s in summaries.items()},
                 findings)
