"""Errors with a kind. The store says *what* went wrong (not found, conflict, invalid); ``api/errors.py``
alone turns the kind into an HTTP status and the documented body."""

from __future__ import annotations

from typing import Literal

Kind = Literal["not_found", "conflict", "invalid"]


class StoreError(ValueError):
    """A step the record refuses. ``kind``: not_found (no such record), conflict (the record's state forbids
    it), invalid (bad input; ``field`` names the offending input when known)."""

    default_kind: Kind = "conflict"

    def __init__(self, message: str, kind: Kind | None = None, *, field: str | None = None) -> None:
        super().__init__(message)
        self.kind: Kind = kind or self.default_kind
        self.field = field


class AppealError(StoreError):
    """An appeal cannot be made or decided."""


class ClaimError(StoreError):
    """A claim, note or resolution is refused."""


class ReviewError(StoreError):
    """A review step is refused."""


class UserError(StoreError):
    """Bad input for a user (unknown role, a floor lead without a team, a weak password, …)."""

    default_kind: Kind = "invalid"


class UserExists(UserError):
    """The user name is taken."""

    default_kind: Kind = "conflict"


class UnknownUser(UserError):
    """No such user."""

    default_kind: Kind = "not_found"


class SourceError(StoreError):
    """Bad input for an ingest source (a bad name, a name taken, a mapping that is not an object)."""

    default_kind: Kind = "invalid"
