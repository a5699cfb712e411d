"""Field mappings: a chat platform's callback body → events of the contract, without code.

A mapping is a JSON object (kept on the source's record, or in the rule-set document under
``[ingest.sources.<name>]``)::

    {"items": "msg_list",                       # where the events are in one body (optional)
     "only": {"msgtype": ["text"]},             # other items are skipped, each with the reason
     "fields": {
        "message_id": "msgid",                  # a dotted path into the item
        "conversation_id": {"join": ["open_kfid", "external_userid"], "sep": ":"},
        "shop_id": {"const": "shop-wecom-01"},  # a constant
        "sender": {"path": "origin", "map": {"3": "customer", "5": "agent"}},   # a lookup
        "ts": {"path": "send_time", "scale": 1000},                             # seconds → ms
        "text": {"path": "text.content"}}}

Contract fields the mapping does not name are copied from the item under their own name. The
result is validated by :func:`zhijian.core.contract.parse_event` like any other event.

The worked example, ``docs/wecom-kf-mapping.json``, maps WeCom 微信客服's ``sync_msg`` answer
(``msg_list`` items with ``msgid``, ``open_kfid``, ``external_userid``, ``send_time`` in seconds,
``origin`` 3 = the customer / 4 = a system event / 5 = the servicer, ``servicer_userid``, ``msgtype``
and ``text.content``), as documented in 微信客服 API「接收消息和事件 / 获取消息」:
https://open.work.weixin.qq.com/kf/doc/92512/93143/93304 (mirrored at
https://www.kancloud.cn/wikizhima/wechatkf-api/2376730).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CONTRACT_FIELDS = ("message_id", "conversation_id", "shop_id", "team_id", "agent_id", "customer_id", "sender",
                   "type", "text", "ts")
_MISSING = object()


class MappingError(ValueError):
    """The mapping itself is malformed (checked when a source is added or the rules are read)."""


class Skipped(Exception):
    """The item is not a chat event this mapping takes (e.g. an image, a recall event)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def get_path(obj: Any, path: str) -> Any:
    """``a.b.0.c`` into nested objects and lists; ``_MISSING`` if any step is absent."""
    current = obj
    for step in path.split("."):
        if isinstance(current, Mapping) and step in current:
            current = current[step]
        elif isinstance(current, list) and step.isdigit() and int(step) < len(current):
            current = current[int(step)]
        else:
            return _MISSING
    return current


def check_mapping(mapping: Any) -> dict[str, Any]:
    """Raise :class:`MappingError` with the reason if ``mapping`` cannot be applied."""
    if not isinstance(mapping, Mapping):
        raise MappingError("a mapping is a JSON object")
    unknown = set(mapping) - {"items", "only", "fields"}
    if unknown:
        raise MappingError(f"unknown mapping key(s) {sorted(unknown)}")
    if "items" in mapping and not isinstance(mapping["items"], str):
        raise MappingError("items: a dotted path (string)")
    only = mapping.get("only", {})
    if not isinstance(only, Mapping) or not all(isinstance(v, list) for v in only.values()):
        raise MappingError("only: an object of path → list of accepted values")
    fields = mapping.get("fields", {})
    if not isinstance(fields, Mapping):
        raise MappingError("fields: an object keyed by contract field")
    for name, spec in fields.items():
        if name not in CONTRACT_FIELDS:
            raise MappingError(f"fields.{name}: not a contract field ({', '.join(CONTRACT_FIELDS)})")
        if isinstance(spec, str):
            continue
        if not isinstance(spec, Mapping) or not ({"path", "const", "join"} & set(spec)):
            raise MappingError(f"fields.{name}: a path, or an object with 'path', 'const' or 'join'")
        if "join" in spec and not (isinstance(spec["join"], list) and all(isinstance(p, str) for p in spec["join"])):
            raise MappingError(f"fields.{name}.join: a list of paths")
        if "map" in spec and not isinstance(spec["map"], Mapping):
            raise MappingError(f"fields.{name}.map: an object")
        if "scale" in spec and (isinstance(spec["scale"], bool) or not isinstance(spec["scale"], int | float)):
            raise MappingError(f"fields.{name}.scale: a number")
    return dict(mapping)


def items_of(body: Any, mapping: Mapping[str, Any] | None) -> list[Any]:
    """The events in one decoded body: the list at ``items``, a JSON array, or the one object."""
    if mapping and mapping.get("items"):
        found = get_path(body, str(mapping["items"]))
        if isinstance(found, list):
            return found
        return [body]  # not a batch body: the item itself will be reported as bad if it is not an event
    return body if isinstance(body, list) else [body]


def _value(item: Any, spec: Any) -> Any:
    if isinstance(spec, str):
        return get_path(item, spec)
    if "const" in spec:
        return spec["const"]
    if "join" in spec:
        parts = [get_path(item, p) for p in spec["join"]]
        if any(p is _MISSING or p is None for p in parts):
            return _MISSING
        return str(spec.get("sep", ":")).join(str(p) for p in parts)
    value = get_path(item, spec["path"])
    if value is _MISSING or value is None:
        return spec.get("default", _MISSING)
    if "map" in spec:
        table = spec["map"]
        key = value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
        if key not in table:
            if "default" in spec:
                return spec["default"]
            raise Skipped(f"{spec['path']} = {key[:40]!r} is not in the mapping's table")
        value = table[key]
    if "scale" in spec and isinstance(value, int | float) and not isinstance(value, bool):
        scaled = value * spec["scale"]
        value = int(scaled) if float(scaled).is_integer() else scaled
    return value


def apply_mapping(item: Any, mapping: Mapping[str, Any] | None) -> Any:
    """The contract-shaped object for one item (validation is left to ``parse_event``).

    Raises :class:`Skipped` for an item the mapping does not take."""
    if not mapping:
        return item
    if not isinstance(item, Mapping):
        return item  # parse_event explains that an event is a JSON object
    for path, accepted in (mapping.get("only") or {}).items():
        value = get_path(item, path)
        if value is _MISSING or value not in accepted:
            shown = "missing" if value is _MISSING else repr(value)[:40]
            raise Skipped(f"{path} is {shown}, not one of {accepted}")
    fields = mapping.get("fields") or {}
    out: dict[str, Any] = {}
    for name in CONTRACT_FIELDS:
        value = _value(item, fields[name]) if name in fields else item.get(name, _MISSING)
        if value is not _MISSING:
            out[name] = value
    return out
