"""Markdown cards in Chinese, and each platform's message body around them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

RULE_NAMES = {
    "banned_word": "禁忌用语", "impolite_address": "不礼貌称呼", "forbidden_phrase": "服务禁语",
    "conflict": "与顾客冲突",
    "deflection": "推诿", "pii_leak": "泄露隐私", "customer_anger": "顾客不满", "customer_waiting": "顾客等待",
    "slow_first_response": "首次响应超时", "unanswered_at_end": "回复中断",
}
SEVERITY_NAMES = {"critical": "严重", "warning": "警告", "info": "提示"}


def waited_s(alert: Mapping[str, Any]) -> float | None:
    detail = alert.get("detail") or {}
    for key in ("waited_s", "first_response_s", "unanswered_s"):
        if isinstance(detail.get(key), int | float):
            return float(detail[key])
    return None


def alert_card(alert: Mapping[str, Any], dashboard_url: str, *, heading: str = "质检告警",
               extra: str = "") -> tuple[str, str]:
    """(title, markdown) for one alert."""
    rule = str(alert.get("rule"))
    title = f"{heading}：{RULE_NAMES.get(rule, rule)}（{SEVERITY_NAMES.get(str(alert.get('severity')), '')}）"
    excerpt = str(alert.get("excerpt") or "").replace("\n", " ")[:120]
    lines = [f"### {title}", f"- 规则：{RULE_NAMES.get(rule, rule)}（{rule}）",
             f"- 坐席：{alert.get('agent_id') or '—'}", f"- 班组：{alert.get('team_id') or '—'}",
             f"- 店铺：{alert.get('shop_id') or '—'}", f"- 会话：{alert.get('conversation_id')}"]
    waited = waited_s(alert)
    if waited is not None:
        lines.append(f"- 等待：{waited:.0f} 秒")
    if excerpt:
        lines.append(f"- 原文：> {excerpt}")
    if extra:
        lines.append(extra)
    lines.append(f"\n[在看板中打开]({dashboard_url.rstrip('/')}/#alert={alert.get('alert_id')})")
    return title, "\n".join(lines)


def digest_card(rule: str, team: str | None, count: int, window_s: float, dashboard_url: str) -> tuple[str, str]:
    title = f"质检告警汇总：{RULE_NAMES.get(rule, rule)}"
    text = (f"### {title}\n- 班组：{team or '—'}\n"
            f"- 过去 {window_s:.0f} 秒内又有 {count} 条同类告警（已合并，未逐条推送）\n"
            f"\n[在看板中查看]({dashboard_url.rstrip('/')}/)")
    return title, text


def body_for(kind: str, title: str, markdown: str) -> dict[str, Any]:
    """The message body each platform documents for markdown."""
    if kind == "dingtalk":
        return {"msgtype": "markdown", "markdown": {"title": title, "text": markdown}}
    if kind == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": markdown}}
    if kind == "feishu":
        return {"msg_type": "interactive", "card": {
            "header": {"title": {"tag": "plain_text", "content": title}},
            "elements": [{"tag": "markdown", "content": markdown}]}}
    return {"title": title, "markdown": markdown}


def encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
