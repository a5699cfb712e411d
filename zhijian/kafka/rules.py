"""Live rule changes: the worker follows ``chat.rules`` and swaps its rule book in place.

The topic has one partition and is compacted; the API publishes each new revision there
after storing it in SQL. Every worker reads the whole topic with its own group-less
consumer (a consumer group would hand the one partition to a single worker). At start
the newest revision comes from the database, so a broker that lost its memory (the
embedded one keeps nothing on disk) does not roll the rules back.
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition

from detectors import RuleBook, RuleSet, RuleSetError, load_ruleset, parse_ruleset
from zhijian.store.database import Database

log = logging.getLogger(__name__)


def initial_ruleset(store: Database) -> RuleSet:
    """The newest published rule set in the database, else the seed."""
    try:
        store.upgrade()
        document = store.rulesets.latest()
    except Exception:  # the database may be down at start: the topic will bring the rules
        log.exception("could not read the rule set from the database; starting with the seed rules")
        document = None
    if document is None:
        return load_ruleset()
    try:
        return parse_ruleset(document)
    except RuleSetError:
        log.exception("the stored rule set is invalid; starting with the seed rules")
        return load_ruleset()


def apply_published(book: RuleBook, value: bytes | None) -> bool:
    """Install a rule set read from the topic if valid and newer. True if installed."""
    if not value:
        return False
    try:
        ruleset = parse_ruleset(json.loads(value))
    except (ValueError, RuleSetError) as exc:
        log.warning("ignoring an invalid rule set on the rules topic: %s", exc)
        return False
    installed = book.replace(ruleset)
    if installed:
        log.info("rule set %s (revision %d) in force", ruleset.version, ruleset.revision)
    return installed


async def follow(bootstrap_servers: str, topic: str, book: RuleBook) -> None:
    """Apply every rule set published on ``topic``, from its beginning, until cancelled."""
    while True:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False)
        try:
            await consumer.start()
            partition = TopicPartition(topic, 0)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            async for message in consumer:
                apply_published(book, message.value)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("following %s failed; retrying in 2 s", topic)
            await asyncio.sleep(2.0)
        finally:
            await consumer.stop()
