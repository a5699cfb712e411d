"""Migration 3: the notifier's ledger — a cursor per destination and a claim per push."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Connection, MetaData, String, Table

NAME = "notifier cursors and deliveries"


def upgrade(conn: Connection) -> None:
    meta = MetaData()
    cursors = Table(
        "notify_cursors", meta,
        Column("destination", String(128), primary_key=True),
        Column("seq", BigInteger, nullable=False),
        Column("updated_at", String(40), nullable=False),
    )
    deliveries = Table(
        "notify_deliveries", meta,
        Column("alert_id", String(64), primary_key=True),
        Column("what", String(64), primary_key=True),
        Column("destination", String(128), primary_key=True),
        Column("seq", BigInteger),
        Column("status", String(16), nullable=False),
        Column("owner", String(128), nullable=False),
        Column("at", String(40), nullable=False),
    )
    cursors.create(conn, checkfirst=True)
    deliveries.create(conn, checkfirst=True)
