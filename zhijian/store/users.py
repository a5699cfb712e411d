"""Users, roles and login sessions: the ``Users`` and ``Sessions`` repositories.

Passwords are hashed with Argon2id (argon2-cffi); a login issues a random token of which
only the SHA-256 is stored, so a database leak does not leak sessions. Roles:

- admin: everything, including users and rules;
- supervisor: every team; claims and resolves alerts;
- floor_lead: their own team only; claims and resolves alerts;
- qa: every team; decides appeals, awards bonuses, edits the rules;
- agent: their own conversations, scores and findings; opens appeals.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, select, update

from zhijian.core.passwords import password_problem
from zhijian.core.roles import ROLES
from zhijian.store.errors import UnknownUser, UserError, UserExists
from zhijian.store.schema import sessions, users

PERMISSIONS = {
    "admin": frozenset({"view", "claim", "appeal", "decide_appeal", "bonus", "rules", "users"}),
    "supervisor": frozenset({"view", "claim"}),
    "floor_lead": frozenset({"view", "claim"}),
    "qa": frozenset({"view", "decide_appeal", "bonus", "rules"}),
    "agent": frozenset({"view", "appeal"}),
}
SESSION_HOURS = 12  # one shift and a bit
_hasher = PasswordHasher()


@dataclass(frozen=True, slots=True)
class Principal:
    username: str
    role: str
    team_id: str | None = None
    agent_id: str | None = None
    display_name: str | None = None
    # the SHA-256 of the session token this principal signed in with (None: the operator's admin token)
    session: str | None = field(default=None, compare=False)

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())

    @property
    def scope(self) -> dict[str, str | None]:
        """What this user may see: {} for everything, else a team or one agent."""
        if self.role == "floor_lead":
            return {"team_id": self.team_id}
        if self.role == "agent":
            return {"agent_id": self.agent_id}
        return {}

    def sees(self, record: dict[str, Any]) -> bool:
        return all(record.get(key) == value for key, value in self.scope.items())

    def as_dict(self) -> dict[str, Any]:
        return {"username": self.username, "role": self.role, "team_id": self.team_id, "agent_id": self.agent_id,
                "display_name": self.display_name or self.username,
                "permissions": sorted(PERMISSIONS.get(self.role, ()))}


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def session_id(token: str) -> str:
    """What the database keeps of a session token (and what identifies its open sockets)."""
    return _sha(token)


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Users:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, username: str, password: str, *, role: str, team_id: str | None = None,
            agent_id: str | None = None, display_name: str | None = None) -> Principal:
        if role not in ROLES:
            raise UserError(f"unknown role {role!r} (one of {', '.join(ROLES)})", field="role")
        if role == "floor_lead" and not team_id:
            raise UserError("a floor lead needs --team", field="team_id")
        problem = password_problem(password, username)
        if problem:
            raise UserError(problem, field="password")
        if role == "agent":
            agent_id = agent_id or username
        row = {"username": username, "password_hash": _hasher.hash(password), "role": role, "team_id": team_id,
               "agent_id": agent_id, "display_name": display_name, "disabled": False,
               "created_at": _now().isoformat(timespec="seconds")}
        with self.engine.begin() as conn:
            if conn.execute(select(users.c.username).where(users.c.username == username)).first():
                raise UserExists(f"user {username!r} exists")
            conn.execute(users.insert().values(row))
        return Principal(username, role, team_id, agent_id, display_name)

    def all(self) -> list[Principal]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(users).order_by(users.c.username)).mappings().all()
        return [Principal(r["username"], r["role"], r["team_id"], r["agent_id"], r["display_name"]) for r in rows]

    def set_password(self, username: str, password: str) -> None:
        """A new password (checked by the policy); every session of the user ends."""
        problem = password_problem(password, username)
        if problem:
            raise UserError(problem, field="password")
        self._change(username, {"password_hash": _hasher.hash(password)})

    def set_disabled(self, username: str, disabled: bool) -> None:
        """Disable (every session ends) or enable a user."""
        self._change(username, {"disabled": disabled})

    def _change(self, username: str, values: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            changed = conn.execute(update(users).where(users.c.username == username).values(values)).rowcount
            if not changed:
                raise UnknownUser(f"no user {username!r}")
            conn.execute(delete(sessions).where(sessions.c.username == username))


class Sessions:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def login(self, username: str, password: str) -> tuple[str, Principal] | None:
        """A new session token for good credentials, else None (the same for an unknown user)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.username == username)).mappings().first()
        if row is None or row["disabled"]:
            _hasher.hash(password)  # spend the same time as a real check
            return None
        try:
            _hasher.verify(row["password_hash"], password)
        except (VerificationError, InvalidHashError):
            return None
        token = secrets.token_urlsafe(32)
        expires = (_now() + datetime.timedelta(hours=SESSION_HOURS)).isoformat(timespec="seconds")
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.expires_at < _now().isoformat(timespec="seconds")))
            conn.execute(sessions.insert().values(token_sha256=_sha(token), username=username, expires_at=expires))
        return token, Principal(row["username"], row["role"], row["team_id"], row["agent_id"], row["display_name"],
                                session=_sha(token))

    def principal_for(self, token: str) -> Principal | None:
        query = select(users, sessions.c.expires_at).join(sessions, sessions.c.username == users.c.username).where(
            sessions.c.token_sha256 == _sha(token))
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None or row["disabled"] or row["expires_at"] < _now().isoformat(timespec="seconds"):
            return None
        return Principal(row["username"], row["role"], row["team_id"], row["agent_id"], row["display_name"],
                         session=_sha(token))

    def live(self, session_ids: Iterable[str]) -> set[str]:
        """Which of these sessions are still valid (not logged out, not expired, user not disabled)."""
        wanted = sorted(set(session_ids))
        alive: set[str] = set()
        now = _now().isoformat(timespec="seconds")
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                query = select(sessions.c.token_sha256).join(users, sessions.c.username == users.c.username).where(
                    sessions.c.token_sha256.in_(wanted[start:start + 500]), sessions.c.expires_at >= now,
                    users.c.disabled.is_(False))
                alive.update(conn.execute(query).scalars())
        return alive

    def logout(self, token: str) -> str:
        """End the session of ``token``; returns its session id."""
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.token_sha256 == _sha(token)))
        return _sha(token)
