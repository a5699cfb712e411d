"""The event contract of topic ``chat.messages``.

Values are JSON objects, the key is ``conversation_id``. ``parse_event`` turns the raw
bytes into a :class:`ChatEvent` or raises :class:`InvalidEvent` carrying one clear,
human-readable reason, which is what the dead-letter topic records.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

SENDERS = frozenset({"customer", "agent", "bot", "system"})
TYPES = frozenset({"message", "conversation_started", "conversation_ended", "transferred"})
MAX_ID_CHARS = 128
# 2000-01-01T00:00:00Z: anything earlier is a unit mistake (seconds sent as milliseconds).
MIN_TS_MS = 946_684_800_000
MAX_TS_MS = 32_503_680_000_000  # 3000-01-01: anything later is garbage (and would overflow float arithmetic)
_SURROGATE = re.compile("[\ud800-\udfff]")  # lone UTF-16 halves decode from JSON but cannot be encoded


class InvalidEvent(ValueError):
    """The event cannot be processed; ``reason`` says why, for the dead-letter record."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ChatEvent:
    message_id: str
    conversation_id: str
    shop_id: str
    team_id: str | None
    agent_id: str | None
    customer_id: str | None
    sender: str
    type: str
    text: str
    ts_ms: int
    # the platform's 留言 mark: a customer wrote while no agent of the shop was online (24-hour rule)
    offline: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Limits:
    max_text_chars: int = 10_000
    max_future_skew_s: float = 24 * 3600.0
    max_value_bytes: int = 64 * 1024  # a whole event: 10,000 characters of text and the fields fit well inside


def _required_str(obj: dict[str, Any], name: str) -> str:
    if name not in obj or obj[name] is None:
        raise InvalidEvent(f"missing field '{name}'")
    return _str_value(obj, name)


def _str_value(obj: dict[str, Any], name: str) -> str:
    value = obj[name]
    if type(value) is not str:
        raise InvalidEvent(f"field '{name}' must be a string, got {type(value).__name__}")
    if not value or value.isspace():
        raise InvalidEvent(f"field '{name}' must not be empty")
    if len(value) > MAX_ID_CHARS:
        raise InvalidEvent(f"field '{name}' is longer than {MAX_ID_CHARS} characters")
    if not value.isascii():
        _check_text(value, name)
    if not value.isprintable():
        raise InvalidEvent(f"field '{name}' contains control characters")
    return value


def _check_text(value: str, name: str) -> None:
    """Reject lone surrogates (they decode from JSON but cannot be encoded again)."""
    if _SURROGATE.search(value):
        raise InvalidEvent(f"field '{name}' contains a lone surrogate (not valid Unicode text)")


def _optional_str(obj: dict[str, Any], name: str) -> str | None:
    if obj.get(name) is None:
        return None
    return _str_value(obj, name)


def parse_ts(value: Any) -> int:
    """Event time as epoch milliseconds: ISO-8601 with an offset, or epoch milliseconds."""
    if isinstance(value, bool):
        raise InvalidEvent("field 'ts' must be ISO-8601 text or epoch milliseconds, got bool")
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidEvent("field 'ts' is not a finite number")
        ts_ms = int(value)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidEvent(f"field 'ts' is not ISO-8601: {value[:40]!r}") from None
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise InvalidEvent("field 'ts' has no UTC offset (write e.g. 2026-11-23T10:00:00+08:00)")
        ts_ms = round(parsed.timestamp() * 1000)
    else:
        raise InvalidEvent(
            f"field 'ts' must be ISO-8601 text or epoch milliseconds, got {type(value).__name__}"
        )
    if ts_ms < MIN_TS_MS:
        raise InvalidEvent(f"field 'ts' is before 2000-01-01 ({str(ts_ms)[:20]}); epoch seconds instead of ms?")
    if ts_ms > MAX_TS_MS:
        raise InvalidEvent("field 'ts' is after the year 3000")
    return ts_ms


def parse_event(raw: bytes | None, *, now_ms: int, limits: Limits = Limits()) -> ChatEvent:
    """Validate one raw ``chat.messages`` value."""
    if raw is None or raw == b"":
        raise InvalidEvent("empty message value")
    if len(raw) > limits.max_value_bytes:
        raise InvalidEvent(f"value is {len(raw)} bytes, over the limit of {limits.max_value_bytes}")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent(f"value is not valid UTF-8 (byte {exc.start})") from None
    try:
        obj = json.loads(decoded)
    except (ValueError, RecursionError) as exc:  # ValueError also covers numbers with thousands of digits
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else (
            "nested too deeply" if isinstance(exc, RecursionError) else "a number is too long")
        raise InvalidEvent(f"value is not valid JSON: {reason}") from None
    if not isinstance(obj, dict):
        raise InvalidEvent(f"value must be a JSON object, got {type(obj).__name__}")

    sender = _required_str(obj, "sender")
    if sender not in SENDERS:
        raise InvalidEvent(f"unknown sender {sender!r} (expected one of {sorted(SENDERS)})")
    etype = _required_str(obj, "type")
    if etype not in TYPES:
        raise InvalidEvent(f"unknown type {etype!r} (expected one of {sorted(TYPES)})")

    text_value = obj.get("text")
    if text_value is None:
        if etype == "message":
            raise InvalidEvent("missing field 'text' (required when type is 'message')")
        text = ""
    elif not isinstance(text_value, str):
        raise InvalidEvent(f"field 'text' must be a string, got {type(text_value).__name__}")
    else:
        text = text_value
        if not text.isascii() and _SURROGATE.search(text):
            raise InvalidEvent("field 'text' contains a lone surrogate (not valid Unicode text)")
    if len(text) > limits.max_text_chars:
        raise InvalidEvent(f"field 'text' has {len(text)} characters, over the limit of {limits.max_text_chars}")

    if "ts" not in obj or obj["ts"] is None:
        raise InvalidEvent("missing field 'ts'")
    ts_ms = parse_ts(obj["ts"])
    if ts_ms > now_ms + limits.max_future_skew_s * 1000:
        raise InvalidEvent(
            f"field 'ts' is {(ts_ms - now_ms) / 3_600_000:.1f} h in the future "
            f"(limit {limits.max_future_skew_s / 3600:g} h)"
        )

    agent_id = _optional_str(obj, "agent_id")
    customer_id = _optional_str(obj, "customer_id")
    if sender == "agent" and agent_id is None:
        raise InvalidEvent("missing field 'agent_id' (required when sender is 'agent')")
    if sender == "customer" and customer_id is None:
        raise InvalidEvent("missing field 'customer_id' (required when sender is 'customer')")

    offline = obj.get("offline", False)
    if offline is None:
        offline = False
    elif not isinstance(offline, bool):
        raise InvalidEvent(f"field 'offline' must be true or false, got {type(offline).__name__}")

    return ChatEvent(
        offline=offline and sender == "customer",
        message_id=_required_str(obj, "message_id"),
        conversation_id=_required_str(obj, "conversation_id"),
        shop_id=_required_str(obj, "shop_id"),
        team_id=_optional_str(obj, "team_id"),
        agent_id=agent_id,
        customer_id=customer_id,
        sender=sender,
        type=etype,
        text=text,
        ts_ms=ts_ms,
    )
