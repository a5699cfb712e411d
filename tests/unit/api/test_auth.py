"""Tokens, passwords, roles and scopes."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import HTTPException
from starlette.requests import Request

from api.auth import ADMIN, Auth, in_scope
from zhijian.core.passwords import common_passwords, password_problem
from zhijian.store.database import Database
from zhijian.store.errors import UnknownUser, UserError
from zhijian.store.users import Principal, session_id


def request(headers: dict[str, str] | None = None, query: str = "") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "headers": raw, "query_string": query.encode(), "method": "GET", "path": "/"})


@pytest.fixture
def users(tmp_path: Path) -> Database:
    store = Database(f"sqlite:///{tmp_path}/users.db")
    store.upgrade()
    store.users.add("lead-a", "lead-a-password", role="floor_lead", team_id="A")
    store.users.add("ann", "ann-password", role="agent")
    return store


def test_the_admin_token_works_in_the_header_only(users: Database) -> None:
    auth = Auth(users, "s3cret")
    assert auth.require(request({"Authorization": "Bearer s3cret"})) is ADMIN


@pytest.mark.parametrize(("headers", "query"), [({}, ""), ({"Authorization": "Bearer nope"}, ""),
                                                 ({"Authorization": "Basic s3cret"}, ""), ({}, "token="),
                                                 ({}, "token=s3cret")])
def test_missing_or_wrong_tokens_get_401(users: Database, headers: dict[str, str], query: str) -> None:
    with pytest.raises(HTTPException) as info:
        Auth(users, "s3cret").require(request(headers, query))
    assert info.value.status_code == 401


def test_passwords_are_hashed_and_sessions_issue_tokens(users: Database) -> None:
    assert users.sessions.login("lead-a", "wrong-password") is None
    assert users.sessions.login("nobody", "lead-a-password") is None
    token, who = users.sessions.login("lead-a", "lead-a-password") or ("", None)
    assert who == Principal("lead-a", "floor_lead", "A", None, None)
    assert who is not None and who.session == session_id(token)
    auth = Auth(users, "s3cret")
    assert auth.require(request({"Authorization": f"Bearer {token}"})).username == "lead-a"
    with users.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT password_hash FROM users WHERE username='lead-a'").scalar()
        assert stored.startswith("$argon2id$")
        assert conn.exec_driver_sql("SELECT token_sha256 FROM sessions").scalar() != token
    assert users.sessions.live([session_id(token), "other"]) == {session_id(token)}
    assert users.sessions.logout(token) == session_id(token)
    assert users.sessions.principal_for(token) is None
    assert users.sessions.live([session_id(token)]) == set()


def test_roles_have_permissions_and_scopes(users: Database) -> None:
    auth = Auth(users, "s3cret")
    token, _ = users.sessions.login("ann", "ann-password") or ("", None)
    ann = auth.require(request({"Authorization": f"Bearer {token}"}))
    assert (ann.agent_id, ann.scope) == ("ann", {"agent_id": "ann"})
    with pytest.raises(HTTPException) as info:
        auth.allowed("claim")(request({"Authorization": f"Bearer {token}"}))
    assert info.value.status_code == 403
    assert auth.allowed("appeal")(request({"Authorization": f"Bearer {token}"})) == ann
    lead = Principal("lead-a", "floor_lead", "A")
    in_scope(lead, {"team_id": "A"})
    with pytest.raises(HTTPException) as hidden:
        in_scope(lead, {"team_id": "B"})
    assert hidden.value.status_code == 404


@pytest.mark.parametrize(("kwargs", "message"), [({"role": "boss"}, "unknown role"),
                                                 ({"role": "floor_lead"}, "needs --team"),
                                                 ({"role": "qa", "password": "short"}, "10 characters"),
                                                 ({"role": "qa", "password": "1234567890"}, "common passwords"),
                                                 ({"role": "qa", "password": "Password123"}, "common passwords"),
                                                 ({"role": "qa", "password": "Woaini1314"}, "common passwords"),
                                                 ({"role": "qa", "password": "abababababab"}, "repeats")])
def test_bad_users_are_refused(users: Database, kwargs: dict[str, str], message: str) -> None:
    password = kwargs.pop("password", "long-enough-password")
    with pytest.raises(UserError, match=message):
        users.users.add("x", password, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(UserError, match="exists"):
        users.users.add("ann", "another-password", role="agent")


def test_an_empty_admin_token_is_refused(users: Database) -> None:
    with pytest.raises(ValueError):
        Auth(users, "")


def test_a_password_change_or_disabling_ends_every_session(users: Database) -> None:
    first, _ = users.sessions.login("lead-a", "lead-a-password") or ("", None)
    second, _ = users.sessions.login("lead-a", "lead-a-password") or ("", None)
    users.users.set_password("lead-a", "another-long-secret")
    assert users.sessions.principal_for(first) is None and users.sessions.principal_for(second) is None
    assert users.sessions.login("lead-a", "lead-a-password") is None
    token, _ = users.sessions.login("lead-a", "another-long-secret") or ("", None)
    assert users.sessions.live([session_id(token)]) == {session_id(token)}
    users.users.set_disabled("lead-a", True)
    assert users.sessions.live([session_id(token)]) == set() and users.sessions.principal_for(token) is None
    assert users.sessions.login("lead-a", "another-long-secret") is None
    users.users.set_disabled("lead-a", False)
    assert users.sessions.login("lead-a", "another-long-secret") is not None
    with pytest.raises(UserError, match="common"):
        users.users.set_password("lead-a", "qwerty123456")
    with pytest.raises(UnknownUser):
        users.users.set_disabled("nobody", True)


def test_the_common_password_list_is_shipped_and_sizeable() -> None:
    listed = common_passwords()
    assert len(listed) >= 1000
    assert {"123456789012", "password123", "qwertyuiop"} <= listed
    assert password_problem("correct horse battery") is None
    assert "user name" in str(password_problem("Lead-A-2024", "lead-a"))
