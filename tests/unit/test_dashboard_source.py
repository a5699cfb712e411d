"""The dashboard's source keeps its house rules: no HTML strings (chat text is untrusted), no browser
prompt/alert/confirm (the page's own dialog, ask.js, instead), no timer started when a module is imported
(views start and stop their timers), and numbers formatted only in format.js."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"
MODULES = sorted(DASHBOARD.glob("*.js"))


def code(path: Path) -> str:
    """The module without its comments (a comment may name what the code must not do)."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    return "\n".join(re.sub(r"(^|\s)//.*$", "", line) for line in text.splitlines())


def test_there_are_modules_to_check() -> None:
    assert {"ask.js", "format.js", "search.js", "wall.js"} <= {p.name for p in MODULES}


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_no_html_strings_and_no_browser_dialogs(path: Path) -> None:
    source = code(path)
    assert not re.search(r"\b(innerHTML|outerHTML|insertAdjacentHTML)\b|document\.write", source)
    assert not re.search(r"(?<![\w.])(window\.)?(prompt|alert|confirm)\s*\(", source), "use ask() from ask.js"


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_no_timer_starts_at_import(path: Path) -> None:
    top_level = [line for line in code(path).splitlines() if re.match(r"(setInterval|setTimeout)\s*\(", line)]
    assert top_level == []


@pytest.mark.parametrize("path", [p for p in MODULES if p.name != "format.js"], ids=lambda p: p.name)
def test_numbers_are_formatted_in_format_js(path: Path) -> None:
    source = code(path)
    # toFixed for SVG coordinates is drawing, not a figure shown to people
    shown = [line for line in source.splitlines() if re.search(r"toFixed\(|toLocale(Time|Date)?String\(", line)
             and "setAttribute" not in line and "xs[i]" not in line]
    assert shown == []
