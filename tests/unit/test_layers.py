"""The layout keeps its promises: every import points down the data flow, and each entry point loads only
the heavy packages it needs (the API process never loads Faust; the engine and the detectors load neither a
web framework nor a database driver nor Kafka)."""

from __future__ import annotations

import ast
import re
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
    ("zhijian.store.database", ["faust", "fastapi"]),
    ("zhijian.cli", ["faust", "fastapi", "sqlalchemy"]),
    ("zhijian.stack", ["faust", "fastapi", "sqlalchemy"]),
    # the worker: Faust and Kafka, no web framework of the API's
    ("stream.app", ["fastapi", "uvicorn", "starlette"]),
    ("zhijian.simulator", ["faust", "fastapi", "sqlalchemy", "numpy"]),
    ("zhijian.notify.service", ["faust", "fastapi", "numpy"]),
    ("zhijian.reports.rollup", ["faust", "fastapi", "aiokafka"]),
    ("zhijian.kafka.broker", ["faust", "fastapi", "sqlalchemy"]),
])
def test_an_entry_point_does_not_load_what_it_does_not_need(entry: str, forbidden: list[str]) -> None:
    probe = f"import sys, {entry}; print(','.join(m for m in {forbidden!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "", f"{entry} loads {loaded.stdout.strip()}"


def test_the_command_lines_help_loads_none_of_the_heavy_packages() -> None:
    """``zhijian --help`` (and a typo) answers without loading a framework, Kafka client or model."""
    heavy = ["faust", "fastapi", "uvicorn", "aiokafka", "numpy", "jieba", "openpyxl", "httpx", "sqlalchemy", "stream",
             "api"]
    probe = ("import contextlib, io, runpy, sys\n"
             "sys.argv = ['zhijian', '--help']\n"
             "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()) as out:\n"
             "    runpy.run_module('zhijian', run_name='__main__')\n"
             f"assert 'usage: zhijian' in out.getvalue()\n"
             f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "", f"zhijian --help loads {loaded.stdout.strip()}"


@pytest.mark.parametrize(("path", "line"), [
    ("zhijian/core/probe.py", "from zhijian.store.base import Store"),
    ("detectors/probe.py", "import aiokafka"),
    ("detectors/probe.py", "from stream.engine.turns import replay"),
    ("zhijian/scoring/probe.py", "import sqlalchemy"),
    ("stream/engine/probe.py", "from stream.app import create_app"),
    ("stream/engine/probe.py", "import faust"),
    ("zhijian/store/probe.py", "from api.auth import Auth"),
    ("zhijian/kafka/probe.py", "from zhijian.notify.cards import card"),
    ("api/probe.py", "from stream.compat import patch"),
    ("api/probe.py", "import faust"),
    ("stream/probe.py", "from api.feed import Hub"),
    ("zhijian/probe.py", "from api.app import create_app"),  # a command imports what it runs inside it
])
def test_ruff_refuses_an_import_up_a_layer(path: str, line: str) -> None:
    """The per-directory ruff.toml files (flake8-tidy-imports) fail `ruff check` on a back-up import."""
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "TID",
                             "--stdin-filename", path, "-"], cwd=ROOT, input=f"{line}\n", capture_output=True,
                            text=True)
    assert result.returncode == 1 and ("TID251" in result.stdout or "TID253" in result.stdout), result.stdout


def test_ruff_lets_imports_down_the_layers_pass() -> None:
    lines = {"api/probe.py": "from zhijian.store.database import Database\nfrom stream.engine.turns import replay\n",
             "stream/engine/probe.py": "from detectors import RuleBook\nfrom zhijian.core.contract import ChatEvent\n",
             "zhijian/probe.py": "def run() -> None:\n    from api.app import create_app\n\n    print(create_app)\n"}
    for path, source in lines.items():
        result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "TID",
                                 "--stdin-filename", path, "-"], cwd=ROOT, input=source, capture_output=True,
                                text=True)
        assert result.returncode == 0, (path, result.stdout)


def test_no_test_module_imports_another() -> None:
    """Shared helpers live in tests/factories.py, the integration harness, browser.py and conftest files."""
    tests = Path(__file__).resolve().parents[1]
    offenders = [f"{path.relative_to(tests)}: {line.strip()}"
                 for path in tests.rglob("*.py") for line in path.read_text(encoding="utf-8").splitlines()
                 if re.match(r"\s*(from|import)\s+tests(\.\w+)*\.test_\w+", line)]
    assert offenders == []
