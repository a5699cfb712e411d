"""The ``[notify]`` section of the rule-set document: channels, routes, digest, the escalation ladder.

Secrets never go into the document (every viewer can read it): a channel names the environment
variables that hold its webhook URL (DingTalk's access_token and WeCom's key are in the URL) and its
signing secret::

    [notify]
    dashboard_url = "https://qa.example.com"     # links in the cards open /#alert=<alert_id>
    rate_per_minute = 20                           # per channel
    digest_window_s = 60                           # repeats of one rule and team within it: one digest
    catchup_s = 900                                # after a notifier outage, alerts detected longer ago than
                                                   # this are recorded as skipped_stale instead of pushed

    [notify.channels.team_a]
    kind = "dingtalk"                              # dingtalk | wecom | feishu | webhook
    url_env = "ZHIJIAN_DINGTALK_URL_TEAM_A"
    secret_env = "ZHIJIAN_DINGTALK_SECRET_TEAM_A"

    [[notify.routes]]                              # every matching route pushes to its channels
    teams = ["team-a"]                             # omitted: any; also shops, rules, severities
    severities = ["critical"]
    channels = ["team_a"]
    catchup_s = 300                                # optional: this route's catch-up window (default below)

    [[notify.escalation]]                          # the ladder, per shop
    shops = ["shop-tmall-01"]
    severities = ["critical"]
    after_s = 60                                   # still unclaimed (and open) this long after the alert
    channels = ["supervisors"]
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KINDS = ("dingtalk", "wecom", "feishu", "webhook")
_CREDENTIAL_IN_URL = re.compile(r"(access_token=|[?&]key=|/hook/)", re.IGNORECASE)


class NotifyConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Channel:
    name: str
    kind: str
    url_env: str | None
    url: str | None  # only for a webhook without a credential in it
    secret_env: str | None
    timeout_s: float = 5.0
    retries: int = 3

    def resolved_url(self) -> str | None:
        return os.environ.get(self.url_env) if self.url_env else self.url

    def secret(self) -> str | None:
        return os.environ.get(self.secret_env) if self.secret_env else None


@dataclass(frozen=True)
class Match:
    shops: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()

    def matches(self, alert: Mapping[str, Any]) -> bool:
        return all(not allowed or alert.get(key) in allowed for key, allowed in (
            ("shop_id", self.shops), ("team_id", self.teams), ("rule", self.rules), ("severity", self.severities)))


@dataclass(frozen=True)
class Route:
    match: Match
    channels: tuple[str, ...]
    catchup_s: float | None = None  # None: the section's catchup_s


@dataclass(frozen=True)
class Step:
    index: int
    match: Match
    after_s: float
    channels: tuple[str, ...]
    label: str


@dataclass(frozen=True)
class NotifyConfig:
    channels: dict[str, Channel]
    routes: tuple[Route, ...]
    escalation: tuple[Step, ...]
    dashboard_url: str = ""
    rate_per_minute: int = 20
    digest_window_s: float = 60.0
    catchup_s: float = 900.0

    def windows(self, alert: Mapping[str, Any]) -> dict[str, float]:
        """Each channel the alert routes to, with its catch-up window (the widest of its matching routes)."""
        found: dict[str, float] = {}
        for route in self.routes:
            if route.match.matches(alert):
                window = self.catchup_s if route.catchup_s is None else route.catchup_s
                for name in route.channels:
                    found[name] = max(found.get(name, 0.0), window)
        return found

    def route(self, alert: Mapping[str, Any]) -> list[str]:
        names: list[str] = []
        for route in self.routes:
            if route.match.matches(alert):
                names.extend(n for n in route.channels if n not in names)
        return names


EMPTY = NotifyConfig(channels={}, routes=(), escalation=())


def _strings(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,)
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise NotifyConfigError(f"{where}: a list of strings")
    return tuple(raw)


def _match(raw: Mapping[str, Any], where: str) -> Match:
    return Match(shops=_strings(raw.get("shops"), f"{where}.shops"), teams=_strings(raw.get("teams"), f"{where}.teams"),
                 rules=_strings(raw.get("rules"), f"{where}.rules"),
                 severities=_strings(raw.get("severities"), f"{where}.severities"))


def _number(raw: Any, where: str, default: float) -> float:
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
        raise NotifyConfigError(f"{where}: a non-negative number")
    return float(raw)


def parse_notify(section: Any) -> NotifyConfig:
    """Validate ``ruleset.document.get("notify")``; raises :class:`NotifyConfigError` with where and why."""
    if section is None:
        return EMPTY
    if not isinstance(section, Mapping):
        raise NotifyConfigError("notify: a table")
    channels: dict[str, Channel] = {}
    for name, raw in (section.get("channels") or {}).items():
        where = f"notify.channels.{name}"
        if not isinstance(raw, Mapping):
            raise NotifyConfigError(f"{where}: a table")
        kind = raw.get("kind")
        if kind not in KINDS:
            raise NotifyConfigError(f"{where}.kind: one of {', '.join(KINDS)}")
        url = raw.get("url")
        if url is not None and (not isinstance(url, str) or _CREDENTIAL_IN_URL.search(url)):
            raise NotifyConfigError(f"{where}.url: a URL with a credential belongs in an environment variable "
                                    "(url_env), not in the rule set")
        if url is None and not isinstance(raw.get("url_env"), str):
            raise NotifyConfigError(f"{where}: url_env (the variable holding the webhook URL) is required")
        if "secret" in raw:
            raise NotifyConfigError(f"{where}.secret: name the environment variable in secret_env instead")
        channels[name] = Channel(name=name, kind=str(kind), url_env=raw.get("url_env"), url=url,
                                 secret_env=raw.get("secret_env"),
                                 timeout_s=_number(raw.get("timeout_s"), f"{where}.timeout_s", 5.0),
                                 retries=int(_number(raw.get("retries"), f"{where}.retries", 3)))
    routes = []
    for index, raw in enumerate(section.get("routes") or []):
        where = f"notify.routes[{index}]"
        window = raw.get("catchup_s")
        routes.append(Route(_match(raw, where), _strings(raw.get("channels"), f"{where}.channels"),
                            None if window is None else _number(window, f"{where}.catchup_s", 0.0)))
    steps = []
    for index, raw in enumerate(section.get("escalation") or []):
        where = f"notify.escalation[{index}]"
        steps.append(Step(index, _match(raw, where), _number(raw.get("after_s"), f"{where}.after_s", 60.0),
                          _strings(raw.get("channels"), f"{where}.channels"),
                          str(raw.get("label") or f"step {index + 1}")))
    for where, named in [*((f"routes[{i}]", r.channels) for i, r in enumerate(routes)),
                         *((f"escalation[{s.index}]", s.channels) for s in steps)]:
        unknown = [n for n in named if n not in channels]
        if unknown:
            raise NotifyConfigError(f"notify.{where}.channels: no such channel(s) {unknown}")
    return NotifyConfig(channels=channels, routes=tuple(routes), escalation=tuple(steps),
                        dashboard_url=str(section.get("dashboard_url") or ""),
                        rate_per_minute=int(_number(section.get("rate_per_minute"), "notify.rate_per_minute", 20)),
                        digest_window_s=_number(section.get("digest_window_s"), "notify.digest_window_s", 60.0),
                        catchup_s=_number(section.get("catchup_s"), "notify.catchup_s", 900.0))
