"""A rule change published through the API reaches the running worker without a restart."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.harness import Stack, chat_event, http_json, produce_events, put_json, wait_for
from zhijian.store.database import Database

pytestmark = pytest.mark.broker


def test_published_rules_reach_the_worker_live_and_findings_record_the_version(stack: Stack) -> None:
    worker_health = f"http://127.0.0.1:{stack.settings.worker_port}/zhijian/health/"
    status, current = http_json(f"{stack.api_url}/api/rules", stack.token)
    assert status == 200 and current["document"]["rules"]

    bad = dict(current["document"], rules=[{"id": "x", "label": "not-a-label", "terms": ["a"]}])
    status, body = put_json(f"{stack.api_url}/api/rules", stack.token, bad)
    assert status == 422 and "not-a-label" in body["detail"][0]["msg"]

    document = dict(current["document"])
    document["rules"] = [*document["rules"], {"id": "conflict.local", "label": "conflict", "terms": ["少啰嗦"],
                                              "severity": "critical", "throttle_s": 0}]
    status, published = put_json(f"{stack.api_url}/api/rules", stack.token, document)
    assert status == 200, published
    version = published["version"]
    assert version == f"r{published['revision']}"
    wait_for(lambda: http_json(worker_health)[1]["ruleset"]["version"] == version, 20, "the worker on the new rules")

    conv, message_id = f"conv-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    produce_events(stack.settings.bootstrap_servers, stack.settings.topics.messages,
                   [chat_event(uuid.uuid4().hex, conv, "customer", "这个有货吗"),
                    chat_event(message_id, conv, "agent", "少啰嗦，拍就是了")])

    def alert() -> dict[str, Any] | None:
        _status, body = http_json(f"{stack.api_url}/api/alerts?limit=100", stack.token)
        return next((a for a in body["alerts"] if a["message_id"] == message_id and a["rule"] == "conflict"), None)

    found = wait_for(alert, 30, "the conflict alert under the new rules")
    assert found["detail"]["ruleset"] == version and found["detail"]["matched"] == "少啰嗦"

    # the record: the revision is in SQL with its digest, newest first
    status, history = http_json(f"{stack.api_url}/api/rules/history", stack.token)
    assert status == 200 and history["revisions"][0]["version"] == version
    assert Database(stack.settings.database_url).rulesets.latest()["version"] == version  # type: ignore[index]
