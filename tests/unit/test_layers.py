"""The layout keeps its promises: every import points down the data flow, and each entry point loads only
the heavy packages it needs (the API process never loads Faust; the engine and the detectors load neither a
web framework nor a database driver nor Kafka)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# bottom first: a package may import from its own layer and the layers before it, never after
LAYERS = [
    ["zhijian.core"],
    ["detectors"],
    ["zhijian.scoring"],
    ["stream.engine"],
    ["zhijian.store"],
    ["zhijian.kafka"],
    ["zhijian.reports", "zhijian.notify"],
    ["stream", "api"],
    ["zhijian"],  # the commands and jobs at the top
]


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for index, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and (best is None or len(name) > best[0]):
                best = (len(name), index)
    return None if best is None else best[1]


def product_modules() -> list[tuple[str, Path]]:
    found = []
    for top in ("zhijian", "stream", "api", "detectors"):
        for path in (ROOT / top).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found.append((".".join(p for p in parts if p != "__init__"), path))
    return found


def test_no_module_imports_from_a_layer_above_it() -> None:
    upward = []
    for module, path in product_modules():
        here = layer_of(module)
        assert here is not None, f"{module} belongs to no layer"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            for name in names:
                there = layer_of(name)
                if there is not None and there > here:
                    upward.append(f"{module} imports {name}")
    assert upward == []


@pytest.mark.parametrize(("entry", "forbidden"), [
    ("api.app", ["faust"]),
    ("stream.engine.conversation", ["faust", "fastapi", "sqlalchemy", "aiokafka"]),
    ("detectors", ["faust", "fastapi", "sqlalchemy", "aiokafka"]),
    ("zhijian.core.contract", ["faust", "fastapi", "sqlalchemy", "aiokafka"]),
    ("zhijian.scoring", ["faust", "fastapi", "sqlalchemy", "aiokafka"]),
    ("zhijian.store.app", ["faust", "fastapi"]),
    ("zhijian.cli", ["faust", "fastapi", "sqlalchemy"]),
    ("zhijian.stack", ["faust", "fastapi", "sqlalchemy"]),
])
def test_an_entry_point_does_not_load_what_it_does_not_need(entry: str, forbidden: list[str]) -> None:
    probe = f"import sys, {entry}; print(','.join(m for m in {forbidden!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "", f"{entry} loads {loaded.stdout.strip()}"
