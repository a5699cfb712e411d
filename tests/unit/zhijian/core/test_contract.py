import json

import pytest

from zhijian.core.contract import InvalidEvent, parse_event

NOW_MS = 1_795_400_000_000


def event(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "message_id": "m1", "conversation_id": "c1", "shop_id": "s1", "team_id": "t1",
        "agent_id": "a1", "customer_id": "u1", "sender": "agent", "type": "message",
        "text": "您好", "ts": NOW_MS,
    }
    base.update(overrides)
    return base


def raw(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def reason_for(value: bytes) -> str:
    with pytest.raises(InvalidEvent) as info:
        parse_event(value, now_ms=NOW_MS)
    return info.value.reason


def test_valid_event_with_epoch_ms() -> None:
    parsed = parse_event(raw(event()), now_ms=NOW_MS)
    assert parsed.message_id == "m1" and parsed.ts_ms == NOW_MS and parsed.text == "您好"


def test_iso_timestamp_with_offset_is_converted_to_utc_ms() -> None:
    parsed = parse_event(raw(event(ts="2026-11-23T10:00:00.250+08:00")), now_ms=NOW_MS)
    assert parsed.ts_ms == 1_795_399_200_250


def test_iso_timestamp_exact_value() -> None:
    parsed = parse_event(raw(event(ts="2026-11-23T02:00:00Z")), now_ms=NOW_MS)
    assert parsed.ts_ms == 1_795_399_200_000


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b"", "empty message value"),
        (raw([1, 2]), "must be a JSON object"),
        (raw({k: v for k, v in event().items() if k != "message_id"}), "missing field 'message_id'"),
        (raw(event(conversation_id=42)), "field 'conversation_id' must be a string, got int"),
        (raw(event(sender="robot")), "unknown sender 'robot'"),
        (raw(event(type="typing")), "unknown type 'typing'"),
        (raw(event(text="啊" * 10_001)), "over the limit of 10000"),
        (raw(event(text=None)), "missing field 'text'"),
        (raw(event(ts=NOW_MS + 3 * 24 * 3_600_000)), "in the future"),
        (raw(event(ts="2026-11-23T10:00:00")), "no UTC offset"),
        (raw(event(ts="yesterday")), "not ISO-8601"),
        (raw(event(ts=1_795_000_000)), "before 2000-01-01"),
        (raw(event(ts=True)), "got bool"),
        (raw(event(agent_id=None)), "'agent_id' (required when sender is 'agent')"),
        (raw(event(sender="customer", customer_id=None)), "'customer_id' (required when sender is 'customer')"),
        (raw(event(shop_id="  ")), "must not be empty"),
    ],
)
def test_each_invalid_input_has_a_clear_reason(value: bytes, expected: str) -> None:
    assert expected in reason_for(value)


def test_lifecycle_events_need_no_text() -> None:
    parsed = parse_event(raw(event(type="conversation_ended", sender="system", text=None)), now_ms=NOW_MS)
    assert parsed.text == "" and parsed.type == "conversation_ended"


def test_poison_values_are_invalid_events_not_crashes() -> None:
    import json as _json

    base = {"message_id": "m1", "conversation_id": "c1", "shop_id": "s", "sender": "customer",
            "customer_id": "u", "type": "message", "text": "你好", "ts": 1_795_000_000_000}
    now = 1_795_000_000_000

    def reason(raw: bytes) -> str:
        try:
            parse_event(raw, now_ms=now)
        except InvalidEvent as exc:
            return exc.reason
        raise AssertionError("accepted")

    assert "too long" in reason(_json.dumps(base).replace("1795000000000", "9" * 5000).encode())
    assert "year 3000" in reason(_json.dumps({**base, "ts": 10 ** 300}).encode())
    assert "surrogate" in reason(_json.dumps({**base, "text": "电话13812345678\ud800"}).encode())
    assert "surrogate" in reason(_json.dumps({**base, "message_id": "m\udc00"}).encode())
    assert "control characters" in reason(_json.dumps({**base, "conversation_id": "c\x00?x"}).encode())
    assert "13812345678" not in reason(_json.dumps({**base, "text": "13812345678\ud800"}).encode())


def test_the_platforms_offline_mark_is_read_on_customer_messages_only() -> None:
    def offline(**overrides: object) -> bool:
        return parse_event(raw(event(**overrides)), now_ms=NOW_MS).offline

    customer = {"sender": "customer", "agent_id": None}
    assert offline(**customer, offline=True) is True
    assert offline(**customer) is False and offline(**customer, offline=None) is False
    assert offline(offline=True) is False  # an agent's message is never 留言
    assert reason_for(raw(event(**customer, offline="yes"))) == "field 'offline' must be true or false, got str"
    assert reason_for(raw(event(**customer, offline=1))) == "field 'offline' must be true or false, got int"
