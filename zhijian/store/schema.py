"""Every table of the durable record, on one MetaData: the schema the newest migration produces.

This module describes; it creates nothing. ``zhijian.store.migrations`` brings a database to this shape
(``Database.upgrade``), and a test compares a migrated database with these tables, so the two cannot drift.
To add a table or column: change it here AND add a migration (see ``zhijian/store/migrations/__init__.py``).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

# -- the live record: alerts, conversations, transcripts, rule sets ---------------------------------------------
alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", String(64), primary_key=True),
    Column("rule", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("fatal", Boolean, nullable=False),
    Column("conversation_id", String(128), nullable=False),
    Column("shop_id", String(128), nullable=False),
    Column("agent_id", String(128)),
    Column("team_id", String(128)),
    Column("message_id", String(128), nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("detected_at", String(40), nullable=False),
    Column("payload", Text, nullable=False),
    # customer_waiting alerts change (warning → critical → cleared) under one alert_id
    Column("revision", Integer, nullable=False, server_default="0"),
    # the change sequence: every insert and every revision update takes the next value (see Alerts.save)
    Column("seq", BigInteger, nullable=False, server_default="0"),
)
Index("ix_alerts_ts", alerts.c.ts_ms)
Index("ix_alerts_seq", alerts.c.seq)
Index("ix_alerts_agent_ts", alerts.c.agent_id, alerts.c.ts_ms)

# One row: the last alert change sequence number handed out. Writers take it first in their
# transaction (a row lock on PostgreSQL, the write lock on SQLite), so sequence numbers become
# visible in commit order: a reader that sees change N has every change below N.
alert_sequence = Table(
    "alert_sequence",
    metadata,
    Column("name", String(16), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# The latest snapshot of every conversation; once closed, its summary with the transcript.
conversations = Table(
    "conversations",
    metadata,
    Column("conversation_id", String(128), primary_key=True),
    Column("shop_id", String(128), nullable=False),
    Column("team_id", String(128)),
    Column("agent_id", String(128)),
    Column("status", String(16), nullable=False),
    Column("opened_ms", BigInteger),
    Column("closed_ms", BigInteger),
    Column("waiting_since_ms", BigInteger),
    Column("version", BigInteger, nullable=False),
    Column("final", Boolean, nullable=False),
    Column("payload", Text, nullable=False),
)
Index("ix_conversations_status", conversations.c.status, conversations.c.waiting_since_ms)
Index("ix_conversations_agent", conversations.c.agent_id, conversations.c.opened_ms)
Index("ix_conversations_team", conversations.c.team_id, conversations.c.opened_ms)

# The transcript: every event of every conversation with its text and its findings' spans (the live
# state holds no texts). Written from the transcript topic; idempotent by (conversation, message).
messages = Table(
    "messages",
    metadata,
    Column("conversation_id", String(128), primary_key=True),
    Column("message_id", String(128), primary_key=True),
    Column("ts_ms", BigInteger, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("sender", String(16), nullable=False),
    Column("agent_id", String(128)),
    Column("text", Text, nullable=False),
    Column("late", Boolean, nullable=False),
    Column("ruleset", String(64), nullable=False),
    Column("marks", Text, nullable=False),  # [[label, start, end], ...]
)
Index("ix_messages_ts", messages.c.conversation_id, messages.c.ts_ms)

# Every rule set a QA lead published, newest revision wins. The broker topic only carries
# the change to running workers; this table is the record (and who changed what, when).
rule_sets = Table(
    "rule_sets",
    metadata,
    Column("revision", BigInteger, primary_key=True, autoincrement=False),
    Column("version", String(64), nullable=False),
    Column("digest", String(32), nullable=False),
    Column("author", String(128), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("document", Text, nullable=False),
)

# -- quality: scores, findings, appeals, bonuses, the audit trail, samples, claims, reviews ----------------------
scores = Table(
    "conversation_scores", metadata,
    Column("conversation_id", String(128), primary_key=True),
    Column("shop_id", String(128), nullable=False),
    Column("agent_id", String(128)),
    Column("team_id", String(128)),
    Column("day", String(10), nullable=False),
    Column("shift", String(32)),
    Column("opened_ms", BigInteger), Column("closed_ms", BigInteger),
    Column("duration_s", Float),
    Column("score", Float, nullable=False), Column("max_score", Integer, nullable=False),
    Column("fatal", Boolean, nullable=False),
    Column("first_response_s", Float), Column("avg_response_s", Float),
    Column("turns", Integer, nullable=False), Column("answered_turns", Integer, nullable=False),
    Column("politeness_rate", Float),
    Column("agent_messages", Integer, nullable=False), Column("customer_messages", Integer, nullable=False),
    Column("labels", Text, nullable=False),  # active finding counts per label
    Column("breakdown", Text, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("summary", Text, nullable=False),
)
Index("ix_scores_day_agent", scores.c.day, scores.c.agent_id)
Index("ix_scores_day_team", scores.c.day, scores.c.team_id)

findings = Table(
    "findings", metadata,
    Column("finding_id", String(32), primary_key=True),
    Column("conversation_id", String(128), nullable=False),
    Column("agent_id", String(128)), Column("team_id", String(128)),
    Column("day", String(10), nullable=False),
    Column("label", String(32), nullable=False),
    Column("message_id", String(128)),
    Column("start", Integer, nullable=False), Column("end", Integer, nullable=False),
    Column("ts_ms", BigInteger),
    Column("matched", Text, nullable=False),
    # active → appealed → dismissed (appeal accepted: out of the score) | upheld (appeal rejected)
    Column("status", String(16), nullable=False),
)
Index("ix_findings_agent_day", findings.c.agent_id, findings.c.day)
Index("ix_findings_conversation", findings.c.conversation_id)

appeals = Table(
    "appeals", metadata,
    Column("appeal_id", String(36), primary_key=True),
    Column("finding_id", String(32), nullable=False),
    Column("conversation_id", String(128), nullable=False),
    Column("agent_id", String(128)),
    Column("day", String(10), nullable=False),  # the finding's day: appeals count in its rollup
    Column("reason", Text, nullable=False),
    Column("status", String(16), nullable=False),  # open | accepted | rejected
    Column("opened_at", String(40), nullable=False),
    Column("decided_at", String(40)),
    Column("reviewer", String(128)),
    Column("note", Text),
)
Index("ix_appeals_finding", appeals.c.finding_id)

bonuses = Table(
    "bonuses", metadata,
    Column("conversation_id", String(128), primary_key=True),
    Column("points", Integer, nullable=False),
    Column("note", Text, nullable=False),
    Column("reviewer", String(128), nullable=False),
    Column("at", String(40), nullable=False),
)

audit = Table(
    "audit_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(40), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", String(128), nullable=False),
    Column("detail", Text, nullable=False),
)

samples = Table(
    "review_samples", metadata,  # 抽检: conversations picked for after-the-fact review, per day
    Column("day", String(10), primary_key=True),
    Column("conversation_id", String(128), primary_key=True),
    Column("agent_id", String(128)),
    Column("reasons", Text, nullable=False),
)

actions = Table(
    "alert_actions", metadata,
    Column("alert_id", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("claimed_by", String(64)),
    Column("claimed_at", String(40)),
    Column("resolved_by", String(64)),
    Column("resolved_at", String(40)),
    Column("notes", Text, nullable=False),  # JSON list of {by, at, text}
)

reviews = Table(
    "reviews", metadata,
    Column("conversation_id", String(128), primary_key=True),
    Column("day", String(10), nullable=False),
    Column("agent_id", String(128)),
    Column("status", String(16), nullable=False),  # open | signed_off
    Column("human", Text, nullable=False),  # human item → points
    Column("reviewer", String(128)),
    Column("signed_off_at", String(40)),
    Column("note", Text, nullable=False),
)
Index("ix_reviews_day", reviews.c.day)

review_marks = Table(
    "review_marks", metadata,  # what a reviewer did to one finding
    Column("finding_id", String(32), primary_key=True),
    Column("conversation_id", String(128), nullable=False),
    Column("origin", String(16), nullable=False),  # auto (was counted) | held (model, under threshold) | manual
    Column("decision", String(16), nullable=False),  # confirmed | rejected | added
    Column("note", Text, nullable=False),
    Column("reviewer", String(128), nullable=False),
    Column("at", String(40), nullable=False),
)
Index("ix_review_marks_conversation", review_marks.c.conversation_id)

appeal_terms = Table(
    "appeal_terms", metadata,  # the window and deadline an appeal was opened under, its evidence, its escalation
    Column("appeal_id", String(36), primary_key=True),
    Column("evidence", Text, nullable=False),
    Column("notice_at", String(40)),  # the result's notice (sign-off, or the day's report) the window ran from
    Column("window_ends", String(40)),
    Column("decide_by", String(40), nullable=False),
    Column("escalated_at", String(40)),
)

reports_published = Table(
    "reports_published", metadata,  # the first time a day's report went out: automatic results' notice
    Column("day", String(10), primary_key=True),
    Column("at", String(40), nullable=False),
)

# -- people and machines: users, login sessions, ingest sources -------------------------------------------------
users = Table(
    "users", metadata,
    Column("username", String(64), primary_key=True),
    Column("password_hash", String(256), nullable=False),
    Column("role", String(16), nullable=False),
    Column("team_id", String(128)),
    Column("agent_id", String(128)),
    Column("display_name", String(128)),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", String(40), nullable=False),
)

sessions = Table(
    "sessions", metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("username", String(64), nullable=False),
    Column("expires_at", String(40), nullable=False),
)

ingest_sources = Table(
    "ingest_sources", metadata,
    Column("name", String(64), primary_key=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("mapping", Text),  # JSON, or NULL: the body is already in the contract's shape
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", String(40), nullable=False),
)

# -- reports: every issued version of a day's, week's or month's rollup (migration 2) --------------------------
report_versions = Table(
    "report_versions", metadata,
    Column("kind", String(8), primary_key=True),  # day | week | month
    Column("name", String(16), primary_key=True),  # 2026-11-20 | 2026-W47 | 2026-11
    Column("version", Integer, primary_key=True),
    Column("first_day", String(10), nullable=False), Column("last_day", String(10), nullable=False),
    Column("issued_at", String(40), nullable=False),
    Column("reason", Text, nullable=False),
    Column("snapshot", Text, nullable=False),  # {"conversations": {id: [agent, score, fatal]}, "agents": {id: mean}}
    Column("changes", Text, nullable=False),  # what moved against the version before (empty for version 1)
    Column("files", Text, nullable=False),  # {file name: content}
)

report_stale = Table(
    "report_stale", metadata,
    Column("day", String(10), primary_key=True),
    Column("since", String(40), nullable=False),
    Column("reason", Text, nullable=False),
)

# -- the notifier's cursor per destination and claim per push (migration 3, zhijian/store/notify_ledger.py) ------
notify_cursors = Table(
    "notify_cursors", metadata,
    Column("destination", String(128), primary_key=True),
    Column("seq", BigInteger, nullable=False),  # the highest alerts.seq served to this destination
    Column("updated_at", String(40), nullable=False),
)

notify_deliveries = Table(
    "notify_deliveries", metadata,
    Column("alert_id", String(64), primary_key=True),
    Column("what", String(64), primary_key=True),  # the severity pushed, or escalation:<step>
    Column("destination", String(128), primary_key=True),
    Column("seq", BigInteger),  # the alert change it was served from; NULL when it came off the broker first
    Column("status", String(16), nullable=False),  # pushed | skipped_stale
    Column("owner", String(128), nullable=False),  # which notifier process claimed it
    Column("at", String(40), nullable=False),
)

# -- bookkeeping: which migrations this database has had --------------------------------------------------------
schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", String(128), nullable=False),
    Column("applied_at", String(40), nullable=False),
)
