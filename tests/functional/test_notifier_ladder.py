"""The notifier's routing and escalation ladder in-process: revisions, claims, the audit trail."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from detectors import RuleBook, load_ruleset, parse_ruleset
from tests.receivers import Receivers, card_text
from zhijian.core.settings import Settings
from zhijian.notify.service import Notifier
from zhijian.store.database import Database
from zhijian.store.users import Principal

SECRETS = {"webhook": "hook-secret"}


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    running = Receivers(dict(SECRETS)).start()
    yield running
    running.stop()


def waiting(alert_id: str, *, revision: int, severity: str, state: str, since_ms: int) -> dict[str, Any]:
    return {"alert_id": alert_id, "rule": "customer_waiting", "severity": severity, "fatal": False,
            "conversation_id": f"conv-{alert_id}", "shop_id": "shop-1", "agent_id": "a1", "team_id": "team-a",
            "message_id": "m1", "excerpt": "在吗", "span": [0, 0], "ts_ms": since_ms, "revision": revision,
            "state": state, "detail": {"waited_s": 61.0}}


def test_the_ladder_escalates_only_open_unclaimed_alerts(receivers: Receivers, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_HOOK_URL", receivers.urls()["webhook"])
    monkeypatch.setenv("T_HOOK_SECRET", SECRETS["webhook"])
    document = {**load_ruleset().document, "notify": {
        "digest_window_s": 0,
        "channels": {"phone": {"kind": "webhook", "url_env": "T_HOOK_URL", "secret_env": "T_HOOK_SECRET"}},
        "escalation": [{"shops": ["shop-1"], "rules": ["customer_waiting"], "after_s": 60, "label": "现场主管",
                        "channels": ["phone"]}]}}
    store = Database(f"sqlite:///{tmp_path}/z.db")
    store.upgrade()
    since = int(time.time() * 1000) - 61_000  # the customer has waited 61 s

    async def run() -> Notifier:
        notifier = Notifier(Settings(), store, RuleBook(parse_ruleset(document)), backoff_s=0.01)
        _ = notifier.config
        notifier.on_alert(waiting("open1", revision=1, severity="warning", state="open", since_ms=since))
        notifier.on_alert(waiting("answered", revision=1, severity="warning", state="open", since_ms=since))
        notifier.on_alert(waiting("answered", revision=3, severity="warning", state="cleared", since_ms=since))
        notifier.on_alert(waiting("answered", revision=1, severity="warning", state="open", since_ms=since))  # late
        notifier.on_alert(waiting("claimed", revision=1, severity="warning", state="open", since_ms=since))
        notifier.on_action({"kind": "action", "alert_id": "claimed", "state": "claimed"})
        notifier.on_alert(waiting("in-sql", revision=1, severity="warning", state="open", since_ms=since))
        store.claims.act("in-sql", Principal("lead", "floor_lead", "team-a"), "claim", known=True)
        notifier.on_alert(waiting("later", revision=1, severity="warning", state="open", since_ms=since + 50_000))
        await notifier.escalate_due()
        worker = notifier.workers["phone"]
        await worker.until(lambda stats: stats.sent >= 1)
        for w in notifier.workers.values():
            await w.stop()
        await notifier.client.aclose()
        return notifier

    notifier = asyncio.run(run())
    assert notifier.counters["escalated"] == 1 and notifier.counters["escalations_skipped"] == 3
    assert [s[1] for s in notifier.ladder] == ["later"]  # not due yet
    cards = receivers.of("webhook")
    assert len(cards) == 1 and cards[0].valid
    assert "升级（现场主管）" in card_text(cards[0]) and "#alert=open1" in card_text(cards[0])
    assert "等待：61 秒" in card_text(cards[0])
    trail = store.audit.trail("open1")
    assert [(e["actor"], e["action"], e["detail"]["step"]) for e in trail] == [("notifier", "alert.escalated",
                                                                                "现场主管")]
    store.dispose()
