"""Migration 2: report versions — every issued day/week/month rollup kept, and the days whose report is stale."""

from __future__ import annotations

from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, Text

NAME = "report versions and stale days"


def upgrade(conn: Connection) -> None:
    meta = MetaData()
    versions = Table(
        "report_versions", meta,
        Column("kind", String(8), primary_key=True),
        Column("name", String(16), primary_key=True),
        Column("version", Integer, primary_key=True),
        Column("first_day", String(10), nullable=False), Column("last_day", String(10), nullable=False),
        Column("issued_at", String(40), nullable=False),
        Column("reason", Text, nullable=False),
        Column("snapshot", Text, nullable=False),
        Column("changes", Text, nullable=False),
        Column("files", Text, nullable=False),
    )
    stale = Table(
        "report_stale", meta,
        Column("day", String(10), primary_key=True),
        Column("since", String(40), nullable=False),
        Column("reason", Text, nullable=False),
    )
    versions.create(conn, checkfirst=True)
    stale.create(conn, checkfirst=True)
