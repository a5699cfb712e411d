"""``Database``: one engine and the repositories composed over it (``db.claims.act(...)``, ``db.alerts.save(...)``).

Every process opens the store the same way — ``Database(url)`` then ``db.upgrade()`` at start — so every
process sees the whole schema, whatever it imported.
"""

from __future__ import annotations

from sqlalchemy import Engine, text

from zhijian.store import migrations
from zhijian.store.alerts import Alerts
from zhijian.store.appeals import Appeals
from zhijian.store.audit import Audit
from zhijian.store.claims import Claims
from zhijian.store.conversations import Conversations, Messages
from zhijian.store.engine import normalise_url, open_engine
from zhijian.store.notify_ledger import NotifyLedger
from zhijian.store.quality import Findings, Samples, Scores
from zhijian.store.report_versions import ReportVersions
from zhijian.store.review import Review
from zhijian.store.rulesets import RuleSets
from zhijian.store.sampling import SampleStore
from zhijian.store.search import TranscriptSearch
from zhijian.store.sources import Sources
from zhijian.store.users import Sessions, Users


class Database:
    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine: Engine = open_engine(self.url)
        self.dialect = self.engine.dialect.name
        self.alerts = Alerts(self.engine)
        self.conversations = Conversations(self.engine)
        self.messages = Messages(self.engine)
        self.rulesets = RuleSets(self.engine)
        self.audit = Audit(self.engine)
        self.findings = Findings(self.engine)
        self.scores = Scores(self.engine)
        self.samples = Samples(self.engine)
        self.appeals = Appeals(self.engine, self.scores)
        self.claims = Claims(self.engine)
        self.review = Review(self.engine, self.scores, self.findings, self.messages, self.audit)
        self.users = Users(self.engine)
        self.sessions = Sessions(self.engine)
        self.sources = Sources(self.engine)
        self.search = TranscriptSearch(self.engine)
        self.report_versions = ReportVersions(self.engine)
        self.picks = SampleStore(self.engine)  # the review hook's additions to a day's sample
        self.notify = NotifyLedger(self.engine, self.alerts)  # the notifier's cursors and claims

    def upgrade(self) -> int:
        """Bring the schema to the newest migration (safe when several processes start at once)."""
        return migrations.upgrade(self.engine)

    def version(self) -> int:
        return migrations.current(self.engine)

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
