"""``zhijian user add`` from the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from zhijian.store.database import Database

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], db: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}"}
    return subprocess.run([sys.executable, "-m", "zhijian", "user", *args], input=stdin, env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_user_add_hashes_the_password_and_the_user_can_log_in(tmp_path: Path) -> None:
    db = tmp_path / "users.db"
    added = run(["add", "lead-a", "--role", "floor_lead", "--team", "team-a", "--password-stdin"], db,
                "a-good-password\n")
    assert added.returncode == 0, added.stderr
    assert "added lead-a (floor_lead, team team-a)" in added.stdout
    refused = run(["add", "lead-b", "--role", "floor_lead", "--password-stdin"], db, "a-good-password\n")
    assert refused.returncode == 2 and "needs --team" in refused.stderr
    listed = run(["list"], db)
    assert listed.stdout.splitlines() == ["lead-a\tfloor_lead\tteam-a\t-"]
    store = Database(f"sqlite:///{db}")
    assert store.sessions.login("lead-a", "a-good-password") is not None
    assert store.sessions.login("lead-a", "wrong") is None
    store.dispose()


def test_user_passwd_disable_and_enable(tmp_path: Path) -> None:
    db = tmp_path / "users.db"
    assert run(["add", "qa-1", "--role", "qa", "--password-stdin"], db, "a-good-password\n").returncode == 0
    weak = run(["add", "qa-2", "--role", "qa", "--password-stdin"], db, "1234567890\n")
    assert weak.returncode == 2 and "common passwords" in weak.stderr
    store = Database(f"sqlite:///{db}")
    token, _ = store.sessions.login("qa-1", "a-good-password") or ("", None)
    refused = run(["passwd", "qa-1", "--password-stdin"], db, "password123\n")
    assert refused.returncode == 2 and "common passwords" in refused.stderr
    changed = run(["passwd", "qa-1", "--password-stdin"], db, "another-good-secret\n")
    assert changed.returncode == 0, changed.stderr
    assert store.sessions.principal_for(token) is None
    assert store.sessions.login("qa-1", "another-good-secret") is not None
    assert run(["disable", "qa-1"], db).returncode == 0
    assert store.sessions.login("qa-1", "another-good-secret") is None
    assert run(["enable", "qa-1"], db).returncode == 0
    assert store.sessions.login("qa-1", "another-good-secret") is not None
    assert run(["disable", "nobody"], db).returncode == 2
    store.dispose()
