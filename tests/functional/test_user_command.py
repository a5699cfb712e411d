"""``zhijian user add`` from the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from zhijian.store.users import UserStore

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
    store = UserStore(f"sqlite:///{db}")
    assert store.login("lead-a", "a-good-password") is not None
    assert store.login("lead-a", "wrong") is None
    store.dispose()
