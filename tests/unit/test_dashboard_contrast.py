"""WCAG AA for the dashboard's text: every text/background pair the stylesheet uses is at least 4.5:1,
computed from the colours in dashboard/style.css itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

STYLE = Path(__file__).resolve().parents[2] / "dashboard" / "style.css"
# (text, background, where): what the stylesheet puts on what
PAIRS = [
    ("--text", "--bg", "body text"), ("--text", "--panel", "panels, cards, dialogs"),
    ("--muted", "--bg", "secondary text"), ("--muted", "--panel", "secondary text on panels"),
    ("--text", "--button", "buttons"), ("--link", "--bg", "links"), ("--link", "--panel", "links on cards"),
    ("#ffffff", "--critical", "critical badge (严重)"), ("#000000", "--warning", "warning badge and pill"),
    ("#ffffff", "--info", "info badge"), ("#ffffff", "--ok", "实时 pill"), ("#ffffff", "--down", "数据中断 pill"),
    ("#ffffff", "--off", "未连接 pill"), ("#ffffff", "--mark", "highlighted words"),
    ("#ffffff", "--banner", "outage banner and error toast"), ("--critical-text", "--panel", "deductions, errors"),
    ("--critical-text", "--bg", "errors on the page"), ("--warning", "--panel", "顾客可能已离开"),
]


def colours() -> dict[str, str]:
    root = re.search(r":root\s*{([^}]*)}", STYLE.read_text(encoding="utf-8"))
    assert root is not None
    return dict(re.findall(r"(--[\w-]+)\s*:\s*(#[0-9a-fA-F]{6})", root.group(1)))


def luminance(hex_colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_contrast_formula() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the classic just-fails grey


@pytest.mark.parametrize(("text", "background", "where"), PAIRS, ids=[p[2] for p in PAIRS])
def test_text_has_at_least_4_5_to_1(text: str, background: str, where: str) -> None:
    palette = colours()
    fg, bg = palette.get(text, text), palette.get(background, background)
    assert contrast(fg, bg) >= 4.5, f"{where}: {fg} on {bg} is {contrast(fg, bg):.2f}:1"
