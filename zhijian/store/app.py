"""The API's view of the database: everything the durable record holds."""

from __future__ import annotations

from zhijian.store.claims import ClaimStore
from zhijian.store.users import UserStore


class AppStore(ClaimStore, UserStore):
    """Alerts, conversations, rules, scores, appeals, claims, users and sessions over one engine."""
