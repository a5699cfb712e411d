"""The simulator counts what the worker raised during its run, read from chat.alerts."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.harness import Stack, wait_for
from zhijian.simulator import run_simulator
from zhijian.store.database import Database

pytestmark = pytest.mark.broker


def test_the_simulator_reports_the_alerts_of_its_run(stack: Stack) -> None:
    stats = asyncio.run(run_simulator(stack.settings, rate=20, duration_s=12, violation_share=0.5, seed=7))
    assert stats.alerts is not None and stats.alerts.problem is None
    counted = stats.alerts.alert_ids
    assert counted, stats.summary()
    assert len(stats.alerts.rows) <= len(counted)
    assert "per agent-hour" in stats.summary()
    store = Database(stack.settings.database_url)
    try:  # every alert it counted is one the worker raised (and stored) during the run
        wait_for(lambda: counted <= {a["alert_id"] for a in store.alerts.recent(limit=1000)}, 30,
                 "the counted alerts in the database")
    finally:
        store.dispose()
