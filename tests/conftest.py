"""Shared fixtures, defined in tests/factories.py. Under CI=true a missing component fails the run, never skips it."""

from __future__ import annotations

from tests.factories import IN_CI, POSTGRES_URL, api, missing, shared_api, store

__all__ = ["IN_CI", "POSTGRES_URL", "api", "missing", "shared_api", "store"]
