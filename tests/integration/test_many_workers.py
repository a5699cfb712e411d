"""Many workers, one floor: three worker processes in one group and two API processes on one broker.

Scripted conversations cover every partition; each scored one has a known violation (or none) and a
known score, and one conversation per partition leaves its customer waiting so that customer_waiting
turns critical while its worker is dead. Checked after a ``kill -9`` of one worker mid-stream, and again
after a rolling restart of every worker:

- every expected alert is present exactly once: one alert_id per violation on the alerts topic (a replay
  after the crash re-sends the same id), each alert_id once in SQL, no alert that was not expected;
- the waiting timers of the dead worker's conversations fire on a survivor within the broker session
  timeout (6 s) + 1 s of the kill (or of their due time, if later);
- per-agent tallies (messages, findings by rule, conversations, scores) are exact, through both APIs;
- the live view of every conversation is right through both APIs (live waiting time for the waiting
  ones, the stored summary for the closed ones).
"""

from __future__ import annotations

import asyncio
import functools
import json
import signal
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from detectors import load_ruleset
from detectors.rubric import rubric_of
from stream.agents import expected_partition
from tests.integration.harness import Proc, chat_event, http_json, produce_events, settings_for, stack_env, wait_for
from zhijian.core.settings import Settings
from zhijian.kafka.broker import EmbeddedBroker, ensure_topics, free_port

pytestmark = pytest.mark.broker

PARTITIONS = 6
SESSION_TIMEOUT_S = 6.0  # stream.app: broker_session_timeout
WARNING_S, CRITICAL_S = 30.0, 60.0  # the default timing policy
# bad text → (rule category as alerts and tallies name it, score of the conversation, fatal)
BAD = {"嫌贵别买": ("conflict", 87.0, 0), "好的哦，请您稍等": ("banned_word", 0.0, 1)}


@dataclass
class Floor:
    env: dict[str, str]
    settings: Settings
    workdir: Path
    workers: dict[str, Proc] = field(default_factory=dict)  # worker url → process
    apis: list[str] = field(default_factory=list)  # API base URLs
    api_procs: list[Proc] = field(default_factory=list)
    starts: Counter[str] = field(default_factory=Counter)

    @property
    def token(self) -> str:
        return self.settings.admin_token

    def start_worker(self, url: str) -> None:
        port = url.rsplit(":", 1)[1]
        self.starts[url] += 1
        label = f"worker-{port}-{self.starts[url]}"
        data_dir = self.workdir / f"worker-{port}"
        data_dir.mkdir(exist_ok=True)
        env = {**self.env, "ZHIJIAN_WORKER_PORT": port, "ZHIJIAN_DATA_DIR": str(data_dir)}
        self.workers[url] = Proc("worker", env, self.workdir, label)

    def health(self) -> dict[str, dict[str, Any]]:
        bodies = {}
        for url, proc in self.workers.items():
            proc.assert_running()
            status, body = http_json(f"{url}/zhijian/health/", timeout=2.0)
            bodies[url] = body if status == 200 else {}
        return bodies

    def settled(self) -> bool:
        """Every worker ready, every partition of both source topics owned by exactly one of them."""
        bodies = self.health()
        if not all(b.get("ready") and not b.get("rebalancing") for b in bodies.values()):
            return False
        owned = Counter(tp for b in bodies.values() for tp in b["owns"])
        topics = (self.settings.topics.messages, self.settings.topics.agent_activity)
        return owned == Counter(f"{t}:{p}" for t in topics for p in range(PARTITIONS))

    def owner_of_partition(self, partition: int) -> str:
        wanted = f"{self.settings.topics.messages}:{partition}"
        return next(url for url, body in self.health().items() if wanted in body.get("owns", []))

    def stop(self) -> None:
        for proc in self.api_procs:
            proc.stop()
        for proc in self.workers.values():
            proc.stop()


def log_tail(floor: Floor) -> str:
    return "\n".join(f"--- {p.label}\n{p.log()[-2500:]}" for p in [*floor.workers.values(), *floor.api_procs])


def api_healthy(url: str, proc: Proc) -> bool:
    proc.assert_running()
    return http_json(f"{url}/healthz")[0] == 200


@pytest.fixture(scope="module")
def floor(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Floor]:
    workdir = tmp_path_factory.mktemp("floor")
    env, _ = prepare_floor(broker, workdir)
    urls = [f"http://127.0.0.1:{free_port()}" for _ in range(3)]
    env["ZHIJIAN_WORKER_URLS"] = ",".join(urls)
    floor = Floor(env, settings_for(env), workdir)
    try:
        for url in urls:  # all three join together: one rebalance, not three
            floor.start_worker(url)
        for n in range(2):
            port = free_port()
            api_env = {**env, "ZHIJIAN_API_PORT": str(port)}
            floor.api_procs.append(Proc("api", api_env, workdir, f"api-{n}"))
            floor.apis.append(f"http://127.0.0.1:{port}")
        try:
            wait_for(floor.settled, 90, "three workers sharing every partition")
            for api, proc in zip(floor.apis, floor.api_procs, strict=True):
                wait_for(functools.partial(api_healthy, api, proc), 60, "API health")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{log_tail(floor)}") from None
        yield floor
    finally:
        floor.stop()


def prepare_floor(broker: EmbeddedBroker, workdir: Path) -> tuple[dict[str, str], Settings]:
    env = stack_env(broker.bootstrap_servers, workdir, name="floor")
    env["ZHIJIAN_PARTITIONS"] = str(PARTITIONS)
    settings = settings_for(env)
    asyncio.run(ensure_topics(broker.bootstrap_servers, settings.topics.all(), partitions=PARTITIONS,
                              compacted=settings.topics.compacted()))
    return env, settings


# -- the script ----------------------------------------------------------------------------------------------
@dataclass
class Script:
    tag: str
    start_ms: int
    scored: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # conversation → (agent, bad text)
    waiting: dict[str, tuple[str, int]] = field(default_factory=dict)  # conversation → (agent, waiting since ms)
    teams: dict[str, str] = field(default_factory=dict)
    end_ms: int = 0  # when the scored conversations ended (their scores count on that day)

    def agents(self) -> list[str]:
        return sorted(self.teams)


def ids_covering_partitions(prefix: str, per_partition: int) -> list[str]:
    found: dict[int, list[str]] = defaultdict(list)
    n = 0
    while min((len(found[p]) for p in range(PARTITIONS)), default=0) < per_partition:
        cid = f"{prefix}-{n}"
        bucket = found[expected_partition(cid.encode(), PARTITIONS)]
        if len(bucket) < per_partition:
            bucket.append(cid)
        n += 1
    return [cid for p in range(PARTITIONS) for cid in found[p]]


def make_script(tag: str) -> Script:
    script = Script(tag, 0)
    agents = [f"{tag}-agent-{n}" for n in range(6)]
    script.teams = {a: ("team-a" if n % 2 == 0 else "team-b") for n, a in enumerate(agents)}
    bad: list[str | None] = [None, "嫌贵别买", "好的哦，请您稍等"]
    for n, cid in enumerate(ids_covering_partitions(f"{tag}-s", 3)):
        script.scored[cid] = (agents[n % len(agents)], bad[n % 3])
    for cid in ids_covering_partitions(f"{tag}-w", 1):
        script.waiting[cid] = (f"{tag}-waiter", 0)
    script.teams[f"{tag}-waiter"] = "team-a"
    return script


def scored_events(script: Script, cid: str, part: int) -> list[dict[str, Any]]:
    """Part 0: the opening (greeting, an answer); part 1, just now: the rest (violation, closing, end).
    The agent always has the last word before a pause, so nobody waits long enough for customer_waiting."""
    agent, bad = script.scored[cid]
    team = script.teams[agent]

    def e(mid: str, sender: str, at_ms: int, text: str = "", **kw: Any) -> dict[str, Any]:
        return chat_event(f"{cid}-{mid}", cid, sender, text, ts_ms=at_ms, team=team, **kw)

    if part == 0:  # just now: waits of a few seconds, far from the waiting thresholds
        t0 = script.start_ms = script.start_ms or int(time.time() * 1000) - 12_000
        return [e("c1", "customer", t0, "在吗", agent=None),
                e("a1", "agent", t0 + 2000, "您好，很高兴为您服务", agent=agent),
                e("c2", "customer", t0 + 4000, "有货吗", agent=None),
                e("a2", "agent", t0 + 6000, "您好，有货的，请您放心", agent=agent)]
    now = script.end_ms - 1000
    events = []
    if bad:
        events += [e("c3", "customer", now - 3000, "好", agent=None), e("a3", "agent", now - 2000, bad, agent=agent)]
    return [*events, e("a9", "agent", now - 1000, "感谢您的耐心，祝您生活愉快", agent=agent),
            e("end", "system", now, "", etype="conversation_ended", agent=None)]


def waiting_events(script: Script, cid: str, lead_s: float) -> list[dict[str, Any]]:
    """A greeting, then a customer question whose critical threshold falls ``lead_s`` from now."""
    agent = f"{script.tag}-waiter"
    since = int(time.time() * 1000) - int((CRITICAL_S - lead_s) * 1000)
    script.waiting[cid] = (agent, since)
    greeting = chat_event(f"{cid}-a0", cid, "agent", "您好，很高兴为您服务", agent=agent, team="team-a",
                          ts_ms=since - 5000)
    question = chat_event(f"{cid}-c1", cid, "customer", "在吗？想问下什么时候发货", agent=None, team="team-a",
                          ts_ms=since)
    return [greeting, question]


# -- what must come out --------------------------------------------------------------------------------------
def expected_violations(script: Script) -> set[tuple[str, str, str]]:
    out = {(cid, BAD[bad][0], f"{cid}-a3") for cid, (_, bad) in script.scored.items() if bad}
    out |= {(cid, "customer_waiting", f"{cid}-c1") for cid in script.waiting}
    return out


def expected_tally(script: Script) -> dict[str, dict[str, Any]]:
    day = rubric_of(load_ruleset().rubric).day(script.end_ms - 1000)
    out: dict[str, dict[str, Any]] = {}
    for agent in script.agents():
        mine = [bad for (a, bad) in script.scored.values() if a == agent]
        waiting = [cid for cid, (a, _) in script.waiting.items() if a == agent]
        by_rule = Counter(BAD[b][0] for b in mine if b)
        scores = [BAD[b][1] if b else 100.0 for b in mine]
        days = {day: {"conversations": len(mine), "score_sum": round(sum(scores), 3),
                      "fatal": sum(BAD[b][2] for b in mine if b),
                      "mean_score": round(sum(scores) / len(mine), 3)}} if mine else {}
        out[agent] = {"agent_id": agent, "team_id": script.teams[agent],
                      "messages": sum(4 if b else 3 for b in mine) + len(waiting),
                      "findings": sum(by_rule.values()), "by_rule": dict(sorted(by_rule.items())), "days": days}
    return out


def stored_alerts(floor: Floor, api: str, script: Script) -> list[dict[str, Any]]:
    status, body = http_json(f"{api}/api/alerts?limit=1000", floor.token)
    assert status == 200, body
    return [a for a in body["alerts"] if a["conversation_id"].startswith(f"{script.tag}-")]


def alerts_on_topic(floor: Floor, script: Script) -> list[dict[str, Any]]:
    import kafka

    consumer = kafka.KafkaConsumer(bootstrap_servers=floor.settings.bootstrap_servers, enable_auto_commit=False,
                                   consumer_timeout_ms=3000)
    try:
        parts = [kafka.TopicPartition(floor.settings.topics.alerts, p) for p in range(PARTITIONS)]
        consumer.assign(parts)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(parts)
        out: list[dict[str, Any]] = []
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            for records in consumer.poll(timeout_ms=1000).values():
                out.extend(json.loads(r.value) for r in records)
        return [a for a in out if a["conversation_id"].startswith(f"{script.tag}-")]
    finally:
        consumer.close()


def tally_through(floor: Floor, api: str, script: Script) -> dict[str, dict[str, Any]]:
    status, body = http_json(f"{api}/api/tally", floor.token)
    if status != 200:
        return {}
    keys = ("agent_id", "team_id", "messages", "findings", "by_rule", "days")
    return {a: {k: v[k] for k in keys} for a, v in body["agents"].items() if a.startswith(f"{script.tag}-")}


def ms_of(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def diagnosis(floor: Floor) -> str:
    """What the group committed, what each changelog partition holds, which conversations each worker has."""
    import kafka

    consumer = kafka.KafkaConsumer(bootstrap_servers=floor.settings.bootstrap_servers, group_id=floor.settings.app_id,
                                   enable_auto_commit=False)
    try:
        inputs = [kafka.TopicPartition(floor.settings.topics.messages, p) for p in range(PARTITIONS)]
        changelog = [kafka.TopicPartition(f"{floor.settings.app_id}-conversations-changelog", p)
                     for p in range(PARTITIONS)]
        committed = {tp.partition: consumer.committed(tp) for tp in inputs}
        input_ends = {tp.partition: end for tp, end in consumer.end_offsets(inputs).items()}
        changelog_ends = {tp.partition: end for tp, end in consumer.end_offsets(changelog).items()}
    finally:
        consumer.close()
    held = {url: sorted(http_json(f"{url}/zhijian/conversations/")[1].get("conversations", {}))
            for url in floor.workers}
    owns = {url: body.get("owns") for url, body in floor.health().items()}
    return (f"input committed {committed}, input ends {input_ends}, changelog ends (as listed) {changelog_ends}, "
            f"owners {owns}, conversations held {held}")


def check_floor(floor: Floor, script: Script) -> None:
    """Alerts exactly once, tallies and scores exact, the live view of every conversation right."""
    expected = expected_violations(script)

    def all_stored() -> bool:
        got = {(a["conversation_id"], a["rule"], a["message_id"]) for a in stored_alerts(floor, floor.apis[0], script)}
        closed = all(a["severity"] == "critical" for a in stored_alerts(floor, floor.apis[0], script)
                     if a["rule"] == "customer_waiting")
        return got == expected and closed

    try:
        wait_for(all_stored, 60, "every expected alert in SQL")
    except AssertionError:
        got = {(a["conversation_id"], a["rule"], a["message_id"], a["severity"])
               for a in stored_alerts(floor, floor.apis[0], script)}
        raise AssertionError(f"alerts in SQL: missing {expected - {g[:3] for g in got}}, "
                             f"unexpected {sorted(g for g in got if g[:3] not in expected)}, "
                             f"waiting {sorted(g for g in got if g[1] == 'customer_waiting')}") from None
    for api in floor.apis:
        stored = stored_alerts(floor, api, script)
        assert sorted(Counter(a["alert_id"] for a in stored).values()) == [1] * len(expected)
        assert {(a["conversation_id"], a["rule"], a["message_id"]) for a in stored} == expected
    on_topic = alerts_on_topic(floor, script)
    ids_per_violation: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for alert in on_topic:
        ids_per_violation[(alert["conversation_id"], alert["rule"], alert["message_id"])].add(alert["alert_id"])
    assert set(ids_per_violation) == expected
    assert all(len(ids) == 1 for ids in ids_per_violation.values()), ids_per_violation

    want = expected_tally(script)

    def exact(api: str) -> bool:
        return tally_through(floor, api, script) == want

    for api in floor.apis:
        try:
            wait_for(functools.partial(exact, api), 30, f"the exact tally through {api}")
        except AssertionError:
            raise AssertionError(f"tally {tally_through(floor, api, script)}\n!= expected {want}") from None

    for api in floor.apis:
        for cid in script.scored:
            status, body = http_json(f"{api}/api/conversations/{cid}", floor.token)
            assert status == 200, (cid, body)
            assert (body["status"], body["source"], body["agent_id"]) == ("closed", "stored", script.scored[cid][0])
        for cid, (agent, since) in script.waiting.items():
            status, body = http_json(f"{api}/api/conversations/{cid}", floor.token)
            now = time.time()
            assert status == 200, (cid, body)
            assert (body["source"], body["status"], body["agent_id"]) == ("live", "waiting", agent)
            assert abs(body["waiting_s"] - (now - since / 1000)) < 3.0


def send_scored(floor: Floor, script: Script, part: int) -> None:
    if part == 1 and not script.end_ms:
        script.end_ms = int(time.time() * 1000)
    produce_events(floor.settings.bootstrap_servers, floor.settings.topics.messages,
                   [e for cid in script.scored for e in scored_events(script, cid, part)])


# -- the tests -------------------------------------------------------------------------------------------------
def test_kill_9_of_one_worker_mid_stream(floor: Floor) -> None:
    script = make_script(f"k{uuid.uuid4().hex[:4]}")
    lead_s = 9.0  # critical is due this long after the waiting questions are sent
    send_scored(floor, script, 0)
    produce_events(floor.settings.bootstrap_servers, floor.settings.topics.messages,
                   [e for cid in script.waiting for e in waiting_events(script, cid, lead_s)])

    def warned() -> bool:  # every waiting conversation has its warning: the floor is mid-stream
        return {a["conversation_id"] for a in stored_alerts(floor, floor.apis[1], script)
                if a["rule"] == "customer_waiting"} == set(script.waiting)

    wait_for(warned, 30, "the warnings of every waiting conversation")
    victim_partitions = {p for p in range(PARTITIONS)
                         if floor.owner_of_partition(p) == (victim := next(iter(floor.workers)))}
    assert victim_partitions, "the victim owns nothing"
    floor.workers.pop(victim).stop(signal.SIGKILL)
    killed_ms = int(time.time() * 1000)
    try:
        after_the_kill(floor, script, victim_partitions, killed_ms)
    finally:
        floor.start_worker(victim)  # back to three for the next test
        wait_for(floor.settled, 90, "three workers again")


def after_the_kill(floor: Floor, script: Script, victim_partitions: set[int], killed_ms: int) -> None:
    send_scored(floor, script, 1)  # the rest of every conversation, the victim's partitions included

    # while the group has not noticed: its partitions have no owner → 503 with Retry-After, not a stale view
    dead_conv = next(cid for cid in script.waiting
                     if expected_partition(cid.encode(), PARTITIONS) in victim_partitions)
    status, body = http_json(f"{floor.apis[0]}/api/conversations/{dead_conv}", floor.token)
    assert status in (200, 503), body
    if status == 200:
        assert body["source"] == "live"  # already taken over: a survivor's live state
    else:
        assert "live state unavailable" in body["detail"]

    def critical(cid: str) -> dict[str, Any] | None:
        return next((a for a in stored_alerts(floor, floor.apis[0], script)
                     if a["conversation_id"] == cid and a["severity"] == "critical"), None)

    try:
        wait_for(lambda: all(critical(cid) for cid in script.waiting), 45, "every waiting conversation critical")
    except AssertionError:
        views = {cid: http_json(f"{floor.apis[0]}/api/conversations/{cid}", floor.token)
                 for cid in script.waiting if not critical(cid)}
        raise AssertionError(f"not critical: {views}\nvictim partitions {victim_partitions}; "
                             f"{diagnosis(floor)}") from None
    for cid, (_agent, since) in script.waiting.items():
        alert = critical(cid)
        assert alert is not None
        fired_ms = ms_of(alert["detected_at"])
        due_ms = since + int(CRITICAL_S * 1000)
        # the survivors rebalance too: every waiting timer, taken over or not, fires within this bound
        late_s = (fired_ms - max(due_ms, killed_ms)) / 1000
        moved = expected_partition(cid.encode(), PARTITIONS) in victim_partitions
        assert late_s <= SESSION_TIMEOUT_S + 1.0, \
            f"{cid} ({'taken over' if moved else 'kept'}): critical {late_s:.2f} s after the kill/due time"
    wait_for(floor.settled, 60, "two survivors sharing every partition")
    try:
        check_floor(floor, script)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{diagnosis(floor)}\n{log_tail(floor)}") from None


def test_rolling_restart_of_every_worker(floor: Floor) -> None:
    script = make_script(f"r{uuid.uuid4().hex[:4]}")
    send_scored(floor, script, 0)
    produce_events(floor.settings.bootstrap_servers, floor.settings.topics.messages,
                   [e for cid in script.waiting for e in waiting_events(script, cid, 25.0)])
    batches = [list(script.scored)[n::3] for n in range(3)]
    for url, batch in zip(list(floor.workers), batches, strict=True):
        assert floor.workers[url].stop() == 0, floor.workers[url].log()  # orderly: SIGTERM
        script.end_ms = int(time.time() * 1000)  # each batch ends now (the same day, barring midnight)
        produce_events(floor.settings.bootstrap_servers, floor.settings.topics.messages,
                       [e for cid in batch for e in scored_events(script, cid, 1)])
        floor.start_worker(url)
        wait_for(floor.settled, 90, f"{url} back in the group")
    try:
        check_floor(floor, script)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log_tail(floor)}") from None


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """name → [(labels, value)] of every sample on a /metrics page."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name].append((sample.labels, sample.value))
    return samples


def test_metrics_on_every_worker_and_api(floor: Floor) -> None:
    script = make_script(f"m{uuid.uuid4().hex[:4]}")
    script.waiting.clear()  # scored conversations only
    del script.teams[f"{script.tag}-waiter"]
    send_scored(floor, script, 0)
    send_scored(floor, script, 1)
    want = expected_tally(script)
    wait_for(lambda: tally_through(floor, floor.apis[0], script) == want, 60, "the tally")

    def caught_up() -> list[dict[str, list[tuple[dict[str, str], float]]]] | None:
        pages = [scrape(url) for url in floor.workers]
        lags = [(labels["partition"], value) for page in pages for labels, value in page["zhijian_consumer_lag"]]
        return pages if sorted(p for p, _ in lags) == [str(p) for p in range(PARTITIONS)] and \
            all(v == 0 for _, v in lags) else None

    pages = wait_for(caught_up, 30, "every partition's lag reported, and zero")  # owned exactly once, caught up
    total: defaultdict[str, float] = defaultdict(float)
    for page in pages:
        for name in ("zhijian_events_processed_total", "zhijian_events_deadlettered_total",
                     "zhijian_events_duplicate_total", "zhijian_event_latency_seconds_count",
                     "zhijian_alert_latency_seconds_count", "zhijian_sql_write_seconds_count"):
            assert name in page, name
            total[name] += sum(v for _, v in page[name])
        for labels, value in page["zhijian_alerts_total"]:
            total[f"alerts {labels['rule']} {labels['severity']}"] += value
    assert total["zhijian_events_processed_total"] >= len(script.scored) * 6
    assert total["alerts conflict critical"] >= 6 and total["alerts banned_word critical"] >= 6
    assert total["zhijian_alert_latency_seconds_count"] >= 12
    assert total["zhijian_sql_write_seconds_count"] > 0
    for api in floor.apis:
        page = scrape(api)
        assert {labels["feed"] for labels, _ in page["zhijian_websocket_clients"]} == {"alerts", "conversations"}
        assert dict((labels["feed"], v) for labels, v in page["zhijian_feed_connected"]) == \
            {"alerts": 1.0, "conversations": 1.0, "actions": 1.0}
        delivered = dict((labels["feed"], v) for labels, v in page["zhijian_feed_records_total"])
        assert delivered["alerts"] >= 12  # this test's alerts reached both API processes
