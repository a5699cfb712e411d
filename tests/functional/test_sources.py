"""Ingest sources: tokens stored hashed, resolved, revoked; mappings checked (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from api.auth import Auth
from api.ingest import SourceResolver
from zhijian.cli import main
from zhijian.store.database import Database
from zhijian.store.errors import SourceError
from zhijian.store.schema import ingest_sources


def test_tokens_are_hashed_resolved_and_revoked(store: Database) -> None:
    token = store.sources.add("relay", {"fields": {"shop_id": {"const": "s1"}}})
    with store.engine.connect() as conn:
        stored = conn.execute(select(ingest_sources)).mappings().one()
    assert token not in json.dumps(dict(stored)) and len(stored["token_sha256"]) == 64
    found = store.sources.for_token(token)
    assert found is not None and found.name == "relay" and found.mapping == {"fields": {"shop_id": {"const": "s1"}}}
    assert store.sources.for_token(token + "x") is None
    with pytest.raises(SourceError, match="exists"):
        store.sources.add("relay")
    with pytest.raises(SourceError, match="letters"):
        store.sources.add("no spaces please")
    resolver = SourceResolver(store, Auth(store, "admin-token"), None)
    assert resolver.resolve("admin-token") is not None and resolver.resolve("admin-token").admin  # type: ignore[union-attr]
    assert store.sources.disable("relay")
    assert store.sources.for_token(token) is None and store.sources.all()[0]["disabled"]
    assert resolver.resolve(token) is None


def test_the_cli_adds_a_source_with_a_checked_mapping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/z.db")
    mapping = Path(__file__).resolve().parents[2] / "docs" / "wecom-kf-mapping.json"
    assert main(["source", "add", "wecom", "--mapping", str(mapping)]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert token.startswith("src_")
    bad = tmp_path / "bad.json"
    bad.write_text('{"fields": {"price": "x"}}')
    assert main(["source", "add", "other", "--mapping", str(bad)]) == 2
    assert "not a contract field" in capsys.readouterr().err
    assert main(["source", "list"]) == 0
    listed = capsys.readouterr().out
    assert "wecom\tmapping\tactive" in listed and "other" not in listed and token not in listed


def test_a_mapping_in_the_rule_set_is_used_when_the_record_has_none(store: Database) -> None:
    from detectors import RuleBook, load_ruleset, parse_ruleset

    token = store.sources.add("wecom")
    other = store.sources.add("broken")
    mapping = {"fields": {"shop_id": {"const": "shop-doc"}}}
    document = {**load_ruleset().document, "ingest": {"sources": {"wecom": mapping, "broken": {"fields": {"x": 1}}}}}
    resolver = SourceResolver(store, Auth(store, "admin-token"), RuleBook(parse_ruleset(document)))
    found = resolver.resolve(token)
    assert found is not None and found.mapping == mapping
    invalid = resolver.resolve(other)  # an invalid section is ignored, not applied
    assert invalid is not None and invalid.mapping is None
