"""Users, roles and login sessions.

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
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Boolean, Column, String, Table, delete, select

from zhijian.store.base import Store, metadata

ROLES = ("admin", "supervisor", "floor_lead", "qa", "agent")
PERMISSIONS = {
    "admin": frozenset({"view", "claim", "appeal", "decide_appeal", "bonus", "rules", "users"}),
    "supervisor": frozenset({"view", "claim"}),
    "floor_lead": frozenset({"view", "claim"}),
    "qa": frozenset({"view", "decide_appeal", "bonus", "rules"}),
    "agent": frozenset({"view", "appeal"}),
}
SESSION_HOURS = 12  # one shift and a bit
_hasher = PasswordHasher()

users = Table(
    "users", metadata,
    Column("username", String(64), primary_key=True),
    Column("password_hash", String(256), nullable=False),
    Column("role", String(16), nullable=False),
    Column("team_id", String(128)),
    Column("agent_id", String(128)),
    Column("display_name", String(128)),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", String(40), nullable=False),
)
sessions = Table(
    "sessions", metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("username", String(64), nullable=False),
    Column("expires_at", String(40), nullable=False),
)


class UserError(ValueError):
    """Bad input for a user (unknown role, a floor lead without a team, …)."""


@dataclass(frozen=True, slots=True)
class Principal:
    username: str
    role: str
    team_id: str | None = None
    agent_id: str | None = None
    display_name: str | None = None

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


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserStore(Store):
    def add_user(self, username: str, password: str, *, role: str, team_id: str | None = None,
                 agent_id: str | None = None, display_name: str | None = None) -> Principal:
        if role not in ROLES:
            raise UserError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
        if role == "floor_lead" and not team_id:
            raise UserError("a floor lead needs --team")
        if len(password) < 8:
            raise UserError("the password needs at least 8 characters")
        if role == "agent":
            agent_id = agent_id or username
        row = {"username": username, "password_hash": _hasher.hash(password), "role": role, "team_id": team_id,
               "agent_id": agent_id, "display_name": display_name, "disabled": False,
               "created_at": _now().isoformat(timespec="seconds")}
        with self.engine.begin() as conn:
            if conn.execute(select(users.c.username).where(users.c.username == username)).first():
                raise UserError(f"user {username!r} exists")
            conn.execute(users.insert().values(row))
        return Principal(username, role, team_id, agent_id, display_name)

    def list_users(self) -> list[Principal]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(users).order_by(users.c.username)).mappings().all()
        return [Principal(r["username"], r["role"], r["team_id"], r["agent_id"], r["display_name"]) for r in rows]

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
        return token, Principal(row["username"], row["role"], row["team_id"], row["agent_id"], row["display_name"])

    def principal_for(self, token: str) -> Principal | None:
        query = select(users, sessions.c.expires_at).join(sessions, sessions.c.username == users.c.username).where(
            sessions.c.token_sha256 == _sha(token))
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None or row["disabled"] or row["expires_at"] < _now().isoformat(timespec="seconds"):
            return None
        return Principal(row["username"], row["role"], row["team_id"], row["agent_id"], row["display_name"])

    def logout(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.token_sha256 == _sha(token)))
