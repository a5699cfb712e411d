"""The API's view of the database: everything the durable record holds."""

from __future__ import annotations

from zhijian.store.review import ReviewStore
from zhijian.store.users import UserStore


class AppStore(ReviewStore, UserStore):
    """Alerts, conversations, rules, scores, appeals, reviews, claims, users and sessions over one engine."""
