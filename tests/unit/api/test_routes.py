"""Every route of the API app (``api.app.create_app``) in process: who may call it, what an unknown or
out-of-scope record answers, and what bad input answers. No broker, no worker: the Kafka parts are
in-memory stand-ins (tests/factories.py), the worker URL refuses (routes that need it answer 503).

The table below is the intended policy, written out by hand: a new route without a row fails
``test_every_route_has_a_rule``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute

from tests.factories import ADMIN_TOKEN, Kit, bearer, seed_floor

# the roles' permissions as intended (zhijian/store/users.py must agree)
MAY = {
    "admin": {"view", "claim", "appeal", "decide_appeal", "bonus", "rules", "users"},
    "supervisor": {"view", "claim"},
    "floor_lead": {"view", "claim"},
    "qa": {"view", "decide_appeal", "bonus", "rules"},
    "agent": {"view", "appeal"},
}
# route → what it needs: "public" (nobody signs in), "signed_in" (any user), "ingest" (a source token or an
# admin; a user of another role is unknown to it: 401), "check" (any user or a source), else a permission
ROUTES: dict[str, str] = {
    "POST /api/login": "public",
    "POST /api/logout": "public",
    "GET /metrics": "public",
    "GET /healthz": "public",
    "POST /api/ws-ticket": "signed_in",
    "GET /api/me": "signed_in",
    "GET /api/users": "users",
    "POST /api/users": "users",
    "PATCH /api/users/{username}": "users",
    "GET /api/alerts": "view",
    "POST /api/alerts/{alert_id}/claim": "claim",
    "POST /api/alerts/{alert_id}/note": "claim",
    "POST /api/alerts/{alert_id}/resolve": "claim",
    "GET /api/alerts/{alert_id}/actions": "view",
    "GET /api/rules": "view",
    "PUT /api/rules": "rules",
    "GET /api/rules/history": "view",
    "GET /api/conversations": "view",
    "GET /api/conversations/{conversation_id}": "view",
    "GET /api/conversations/{conversation_id}/alerts": "view",
    "GET /api/conversations/{conversation_id}/score": "view",
    "POST /api/conversations/{conversation_id}/bonus": "bonus",
    "POST /api/conversations/{conversation_id}/items/{item}/appeals": "appeal",
    "GET /api/agents": "view",
    "GET /api/agents/{agent_id}": "view",
    "GET /api/teams/{team_id}": "view",
    "POST /api/findings/{finding_id}/appeals": "appeal",
    "POST /api/appeals/{appeal_id}/decision": "decide_appeal",
    "GET /api/appeals": "view",
    "GET /api/audit": "decide_appeal",
    "GET /api/review/queue": "decide_appeal",
    "GET /api/review/conversations/{conversation_id}": "view",
    "GET /api/review/results": "view",
    "POST /api/review/findings/{finding_id}/decision": "decide_appeal",
    "POST /api/review/conversations/{conversation_id}/findings": "decide_appeal",
    "POST /api/review/conversations/{conversation_id}/items": "decide_appeal",
    "POST /api/review/conversations/{conversation_id}/sign-off": "decide_appeal",
    "GET /api/review/appeals": "decide_appeal",
    "POST /api/events": "ingest",
    "GET /api/events/stats": "view",
    "POST /api/check": "check",
    "GET /api/export/alerts.xlsx": "view",
    "GET /api/export/agents.xlsx": "view",
    "GET /api/tally": "view",
    "GET /api/search": "view",
    "GET /api/reports/{kind}/{name}/versions": "view",
    "GET /api/reports/{kind}/{name}/versions/{version}": "view",
    "GET /api/reports/{kind}/{name}/versions/{version}/files/{file}": "view",
}
SOCKETS = {"/ws/alerts", "/ws/conversations"}
# a sample of each path parameter (they need not exist: permission is checked first)
SAMPLE = {"username": "nobody", "alert_id": "al-none", "conversation_id": "k-none", "item": "first_response",
          "agent_id": "a-none", "team_id": "t-none", "finding_id": "f-none", "appeal_id": "ap-none",
          "kind": "day", "name": "2026-11-20", "version": "1", "file": "agents-2026-11-20.csv"}
PEOPLE = ["supervisor", "floor_lead", "qa", "agent", "admin_user"]


@pytest.fixture
def kit(shared_api: Kit) -> Kit:
    """The module's app (tests/factories.py shared_api): for tests that change nothing another reads."""
    return shared_api


def walk(routes: list[Any], prefix: str = "") -> Iterator[Any]:
    for route in routes:
        if hasattr(route, "original_router"):  # an included router (FastAPI ≥ 0.13x keeps them nested)
            yield from walk(route.original_router.routes, prefix + route.include_context.prefix)
        else:
            yield prefix, route


def app_routes(kit: Kit) -> tuple[set[str], set[str]]:
    rest, sockets = set(), set()
    for prefix, route in walk(kit.client.app.routes):
        if isinstance(route, APIRoute):
            rest |= {f"{method} {prefix}{route.path}" for method in route.methods}
        elif isinstance(route, APIWebSocketRoute):
            sockets.add(prefix + route.path)
    return rest, sockets


def call(kit: Kit, route: str, headers: dict[str, str] | None = None) -> Any:
    method, path = route.split(" ", 1)
    url = path.format(**SAMPLE)
    body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    return kit.client.request(method, url, headers=headers or {}, **body)


def role_of(kit: Kit, person: str) -> str:
    return kit.people[person].role


def test_every_route_has_a_rule(kit: Kit) -> None:
    rest, sockets = app_routes(kit)
    assert rest == set(ROUTES), f"routes without a rule: {rest - set(ROUTES)}; rules without a route: " \
                                f"{set(ROUTES) - rest}"
    assert sockets == SOCKETS


def test_the_roles_have_the_intended_permissions(kit: Kit) -> None:
    for person in PEOPLE:
        response = kit.client.get("/api/me", headers=kit.people[person].headers)
        assert response.status_code == 200
        assert set(response.json()["permissions"]) == MAY[role_of(kit, person)]


@pytest.mark.parametrize("route", [r for r, need in ROUTES.items() if need != "public"])
def test_without_a_valid_token_every_route_answers_401(kit: Kit, route: str) -> None:
    for headers in ({}, bearer("not-a-token"), {"authorization": f"Basic {ADMIN_TOKEN}"}):
        response = call(kit, route, headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["detail"] in ("missing or invalid bearer token", "missing or invalid ingest token")


@pytest.mark.parametrize("route", [r for r, need in ROUTES.items() if need == "public"])
def test_public_routes_answer_without_a_token(kit: Kit, route: str) -> None:
    assert call(kit, route).status_code not in (401, 403)


@pytest.mark.parametrize("route", [r for r, need in ROUTES.items() if need != "public"])
def test_each_role_is_allowed_or_refused_as_intended(kit: Kit, route: str) -> None:
    need = ROUTES[route]
    for person in [*PEOPLE, "admin_token"]:
        headers = bearer(ADMIN_TOKEN) if person == "admin_token" else kit.people[person].headers
        role = "admin" if person == "admin_token" else role_of(kit, person)
        response = call(kit, route, headers)
        if need in ("signed_in", "check") or (need == "ingest" and role == "admin") or need in MAY[role]:
            assert response.status_code not in (401, 403), (person, response.status_code, response.text)
        elif need == "ingest":
            assert response.status_code == 401, (person, response.text)  # only sources and admins ingest
        else:
            assert response.status_code == 403, (person, response.status_code, response.text)
            assert response.json() == {"detail": f"the {role} role may not {need.replace('_', ' ')}"}


def test_a_signed_out_token_is_refused(api: Kit) -> None:
    headers = api.people["qa"].headers
    assert api.client.get("/api/me", headers=headers).status_code == 200
    assert api.client.post("/api/logout", headers=headers).status_code == 204
    assert api.client.get("/api/me", headers=headers).status_code == 401
    assert api.client.post("/api/ws-ticket", headers=headers).status_code == 401


# ---------------------------------------------------------------------------------- scope: 404 as missing

NOT_FOUND = {"detail": "not found"}


def out_of_scope_cases(kit: Kit) -> list[tuple[str, str, str, str | None, dict[str, Any] | None]]:
    """(person, method, url of a team-t1 record that person may not see, the same url for a record that
    does not exist, body)."""
    floor = seed_floor(kit.store)
    alert, conv, finding, day = floor.alerts["t1"], floor.conversations["t1"], floor.findings["t1"], floor.day
    cases: list[tuple[str, str, str, str | None, dict[str, Any] | None]] = []
    for person in ("other_lead", "other_agent"):
        cases += [
            (person, "GET", f"/api/alerts/{alert}/actions", "/api/alerts/al-none/actions", None),
            # a closed, stored conversation; a missing id is asked of its worker (none here: 503, not 404)
            (person, "GET", f"/api/conversations/{conv}", None, None),
            (person, "GET", f"/api/conversations/{conv}/score", "/api/conversations/k-none/score", None),
            (person, "GET", f"/api/agents/a1?date={day}", f"/api/agents/a-none?date={day}", None),
            (person, "GET", f"/api/teams/t1?date={day}", f"/api/teams/t-none?date={day}", None),
            (person, "GET", f"/api/review/conversations/{conv}", "/api/review/conversations/k-none", None),
        ]
    for action, body in (("claim", {}), ("note", {"note": "看一下"}), ("resolve", {})):
        cases.append(("other_lead", "POST", f"/api/alerts/{alert}/{action}", f"/api/alerts/al-none/{action}", body))
    appeal = {"reason": "不是我说的"}
    cases += [("other_agent", "POST", f"/api/findings/{finding}/appeals", "/api/findings/f-none/appeals", appeal),
              ("other_agent", "POST", f"/api/conversations/{conv}/items/first_response/appeals",
               "/api/conversations/k-none/items/first_response/appeals", appeal)]
    return cases


def test_a_record_out_of_scope_answers_the_same_404_as_a_missing_one(kit: Kit) -> None:
    for person, method, url, missing_url, body in out_of_scope_cases(kit):
        headers = kit.people[person].headers
        sent: dict[str, Any] = {"json": body} if body is not None else {}
        hidden = kit.client.request(method, url, headers=headers, **sent)
        assert (hidden.status_code, hidden.json()) == (404, NOT_FOUND), (person, url, hidden.text)
        if missing_url is not None:
            missing = kit.client.request(method, missing_url, headers=headers, **sent)
            assert (missing.status_code, missing.json()) == (404, NOT_FOUND), (person, missing_url, missing.text)
        if method == "GET":  # the record exists: someone in scope gets it
            assert kit.client.get(url, headers=kit.admin).status_code == 200, url
    assert kit.publisher("chat.alert-actions").published == []  # nothing refused was published


def test_lists_show_only_the_callers_scope(kit: Kit) -> None:
    floor = seed_floor(kit.store)  # already there: the same ids

    def teams(person: str, url: str, key: str) -> set[str]:
        response = kit.client.get(url, headers=kit.people[person].headers)
        assert response.status_code == 200, response.text
        return {row["team_id"] for row in response.json()[key]}

    for url, key in ((f"/api/agents?date={floor.day}", "agents"), ("/api/alerts", "alerts"),
                     ("/api/conversations", "conversations")):
        if key == "agents":
            continue  # the scoreboard rows carry agents, checked below
        assert teams("floor_lead", url, key) == {"t1"}, url
        assert teams("other_agent", url, key) == {"t2"}, url
        assert teams("supervisor", url, key) == {"t1", "t2"}, url
    board = kit.client.get(f"/api/agents?date={floor.day}", headers=kit.people["other_lead"].headers).json()
    assert [a["agent_id"] for a in board["agents"]] == ["a2"]
    assert kit.client.get("/api/conversations?team_id=t1", headers=kit.people["other_lead"].headers).json() == \
        {"conversations": []}  # a filter cannot widen the scope
    assert kit.client.get(f"/api/conversations/{floor.conversations['t1']}/alerts",
                          headers=kit.people["other_lead"].headers).json()["alerts"] == []


def test_a_claim_in_scope_is_stored_and_published_to_every_api_process(api: Kit) -> None:
    seed_floor(api.store)
    response = api.client.post("/api/alerts/al-t1/claim", headers=api.people["floor_lead"].headers,
                               json={"note": "马上处理"})
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "claimed"
    [(key, event)] = api.publisher("chat.alert-actions").published
    assert key == "al-t1" and event["kind"] == "action" and event["team_id"] == "t1"
    lead = api.people["floor_lead"].headers
    assert api.client.post("/api/alerts/al-t1/resolve", headers=lead, json={}).status_code == 200
    again = api.client.post("/api/alerts/al-t1/claim", headers=lead, json={})
    assert (again.status_code, again.json()) == (409, {"detail": "alert already resolved"})
    assert [e["state"] for _, e in api.publisher("chat.alert-actions").published] == ["claimed", "resolved"]


# --------------------------------------------------------------------------------------------- bad input

BAD_INPUT = [
    # (method, url, body or raw bytes, expected loc, expected type)
    ("POST", "/api/login", {}, ["body", "username"], "missing"),
    ("POST", "/api/login", b"{not json", ["body", 1], "json_invalid"),
    ("POST", "/api/users", {"username": "x1", "password": "123", "role": "qa"}, ["body", "password"], None),
    ("POST", "/api/users", {"username": "x2", "password": "long-enough-Pw-9", "role": "king"}, ["body", "role"],
     None),
    ("GET", "/api/alerts?limit=0", None, ["query", "limit"], "greater_than_equal"),
    ("GET", "/api/alerts?after=abc", None, ["query", "after"], "string_pattern_mismatch"),
    ("GET", "/api/alerts?since_ms=-1", None, ["query", "since_ms"], "greater_than_equal"),
    ("GET", "/api/alerts/a%01b/actions", None, ["path", "alert_id"], "string_pattern_mismatch"),
    ("POST", "/api/alerts/al-t1/note", {"note": "   "}, ["body", "note"], "string_pattern_mismatch"),
    ("POST", "/api/alerts/al-t1/resolve?outcome=maybe", {}, ["query", "outcome"], "literal_error"),
    ("GET", "/api/conversations?status=gone", None, ["query", "status"], "literal_error"),
    ("GET", "/api/agents?date=yesterday", None, ["query", "date"], None),
    ("PUT", "/api/rules", {"rules": "not a rule set"}, ["body"], "value_error"),
    ("POST", "/api/check", {"text": 5}, ["body", "text"], None),
    ("POST", "/api/appeals/ap-none/decision", {"accept": "perhaps"}, ["body", "accept"], None),
]


@pytest.mark.parametrize(("method", "url", "body", "loc", "kind"), BAD_INPUT,
                         ids=[f"{m} {u}" for m, u, *_ in BAD_INPUT])
def test_bad_input_answers_422_in_fastapis_shape(kit: Kit, method: str, url: str, body: Any,
                                                 loc: list[Any], kind: str | None) -> None:
    sent = {"content": body, "headers": {**kit.admin, "content-type": "application/json"}} \
        if isinstance(body, bytes) else {"json": body, "headers": kit.admin} if body is not None \
        else {"headers": kit.admin}
    response = kit.client.request(method, url, **sent)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail, detail
    assert all({"type", "loc", "msg"} <= set(error) for error in detail), detail
    assert any(error["loc"][:len(loc)] == loc for error in detail), detail
    if kind is not None:
        assert any(error["type"] == kind for error in detail), detail


def test_an_ingest_body_with_no_event_taken_answers_422_with_each_reason(kit: Kit) -> None:
    response = kit.client.post("/api/events", content=b"\xff\xfe",
                               headers={**kit.admin, "content-type": "application/json"})
    assert response.status_code == 422
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (0, 1)
    assert body["results"] == [{"index": 0, "status": "rejected", "reason": "value is not valid UTF-8 (byte 0)"}]


def test_the_ingest_route_hands_accepted_events_to_its_producer(kit: Kit) -> None:
    event = {"message_id": "m1", "conversation_id": "c1", "shop_id": "s1", "team_id": "t1", "agent_id": "a1",
             "customer_id": "u1", "sender": "agent", "type": "message", "text": "您好", "ts": 1_795_000_000_000}
    response = kit.client.post("/api/events", headers=kit.admin, json=event)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    stats = kit.client.get("/api/events/stats", headers=kit.people["qa"].headers).json()
    assert stats["connected"] is True and stats["accepted"] >= 1


# ------------------------------------------------------------------------------------------- WebSockets

def ticket(kit: Kit, person: str) -> str:
    headers = bearer(ADMIN_TOKEN) if person == "admin_token" else kit.people[person].headers
    response = kit.client.post("/api/ws-ticket", headers=headers)
    assert response.status_code == 200
    return str(response.json()["ticket"])


@pytest.mark.parametrize("path", sorted(SOCKETS))
def test_a_socket_without_a_valid_ticket_is_closed_with_1008(kit: Kit, path: str) -> None:
    from starlette.websockets import WebSocketDisconnect

    used = ticket(kit, "floor_lead")
    with kit.client.websocket_connect(f"{path}?ticket={used}") as socket:
        socket.close()
    for url in (path, f"{path}?ticket=made-up", f"{path}?ticket={used}"):  # none, unknown, spent
        with kit.client.websocket_connect(url) as socket, pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_text()
        assert closed.value.code == 1008, url
    # a session token is not a ticket (query strings never carry tokens)
    token = kit.people["floor_lead"].headers["authorization"].split(" ", 1)[1]
    with kit.client.websocket_connect(f"{path}?ticket={token}") as socket, \
            pytest.raises(WebSocketDisconnect) as closed:
        socket.receive_text()
    assert closed.value.code == 1008


def frames(socket: Any, count: int, wanted: Any) -> list[dict[str, Any]]:
    """The next ``count`` frames ``wanted`` keeps (heartbeats arrive every 5 s, so this cannot hang long)."""
    import json

    got: list[dict[str, Any]] = []
    for _ in range(50):
        frame = json.loads(socket.receive_text())
        if wanted(frame):
            got.append(frame)
            if len(got) == count:
                return got
    raise AssertionError(f"only {got} of {count} frames")


@pytest.mark.parametrize(("person", "team"), [("floor_lead", "t1"), ("other_agent", "t2"), ("supervisor", None)])
def test_the_alert_socket_pushes_only_what_the_user_may_see(kit: Kit, person: str, team: str | None) -> None:
    from tests.factories import alert

    with kit.client.websocket_connect(f"/ws/alerts?ticket={ticket(kit, person)}") as socket:
        assert frames(socket, 1, lambda f: f.get("kind") != "heartbeat")[0]["kind"] == "ready"
        for n, (t, agent) in enumerate((("t2", "a2"), ("t1", "a1"), ("t2", "a2"), ("t1", "a1"))):
            kit.push("chat.alerts", alert(f"live-{n}", 1_795_000_000_000 + n, team_id=t, agent_id=agent))
        kit.push("chat.alerts", alert("marker", 1_795_000_001_000, team_id=team or "t1",
                                      agent_id={"t1": "a1", "t2": "a2"}[team or "t1"]))
        pushed = frames(socket, 5 if team is None else 3, lambda f: "alert_id" in f)
    ids = [f["alert_id"] for f in pushed]
    if team is None:
        assert ids == ["live-0", "live-1", "live-2", "live-3", "marker"]
    else:
        assert all(f["team_id"] == team for f in pushed)
        assert ids == [*([f"live-{n}" for n in (1, 3)] if team == "t1" else [f"live-{n}" for n in (0, 2)]),
                       "marker"]


def test_the_conversation_socket_pushes_only_what_the_user_may_see(kit: Kit) -> None:
    snapshot = {"conversation_id": "", "shop_id": "s1", "team_id": "", "agent_id": "", "status": "waiting",
                "version": 1}
    kit.store.conversations.save([{**snapshot, "conversation_id": "w-0", "team_id": "t1", "agent_id": "a1"}])
    with kit.client.websocket_connect(f"/ws/conversations?ticket={ticket(kit, 'floor_lead')}") as socket:
        # the waiting conversations come first, sent after the socket subscribed: what follows is live
        assert frames(socket, 1, lambda f: "conversation_id" in f)[0]["conversation_id"] == "w-0"
        kit.push("chat.conversations", {**snapshot, "conversation_id": "w-t2", "team_id": "t2", "agent_id": "a2"})
        kit.push("chat.conversations", {**snapshot, "conversation_id": "w-t1", "team_id": "t1", "agent_id": "a1"})
        [pushed] = frames(socket, 1, lambda f: "conversation_id" in f)
    assert pushed["conversation_id"] == "w-t1"


def test_signing_out_closes_the_users_sockets_with_4401(api: Kit) -> None:
    from starlette.websockets import WebSocketDisconnect

    with api.client.websocket_connect(f"/ws/alerts?ticket={ticket(api, 'qa')}") as socket:
        assert frames(socket, 1, lambda f: f.get("kind") == "ready")
        assert api.client.post("/api/logout", headers=api.people["qa"].headers).status_code == 204
        with pytest.raises(WebSocketDisconnect) as closed:
            frames(socket, 1, lambda f: False)
    assert closed.value.code == 4401
