"""Shared fixtures. Under CI=true a missing component fails the run, never skips it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from zhijian.store.app import AppStore
from zhijian.store.base import metadata

POSTGRES_URL = os.environ.get("ZHIJIAN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI") == "true"


def missing(component: str, why: str) -> None:
    """Fail under CI; outside CI, skip with the reason (a developer without the component)."""
    message = f"{component} unavailable: {why}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)  # outside CI only


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[AppStore]:
    """An empty database with the whole schema: SQLite, and PostgreSQL (CI runs both)."""
    if request.param == "sqlite":
        db = AppStore(f"sqlite:///{tmp_path}/zhijian.db")
    else:
        db = AppStore(POSTGRES_URL)
        try:
            db.ping()
        except Exception as exc:
            missing("PostgreSQL", str(exc))
        metadata.drop_all(db.engine)
    db.create_schema()
    yield db
    if request.param == "postgresql":
        metadata.drop_all(db.engine)
    db.dispose()
