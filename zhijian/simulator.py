"""Demo traffic: many concurrent, realistic Chinese customer-service conversations.

Each conversation is its own coroutine with real pauses (customers typing, agents
looking things up), so event times and first-response times are what they would be
on a floor. ``violation_share`` of agent messages break a rule (banned modal particles,
sometimes with other bad phrasing); about 5% of first replies come after 25 s. Normal
replies include words that contain the banned characters (感恩, 喂食器) so that false
positives would be visible on the dashboard.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from zhijian.core.settings import Settings

SHOPS = {"shop-tmall-01": ["team-a", "team-b"], "shop-jd-02": ["team-c"]}
AGENTS = {team: [f"{team[-1]}{n:02d}" for n in range(1, 5)] for teams in SHOPS.values() for team in teams}

CUSTOMER_OPENERS = [
    "在吗？", "你好，我想问一下这款还有货吗", "我的订单怎么还没发货", "请问这款支持七天无理由退货吗",
    "发票怎么开？", "快递到哪了，三天了还没到", "这个尺码偏大还是偏小", "优惠券用不了怎么回事",
    "我买的喂食器不出粮了", "收到的杯子有裂缝", "能不能便宜一点", "订单地址填错了能改吗",
]
CUSTOMER_FOLLOWUPS = [
    "好的", "那什么时候能到", "可以再便宜点吗", "行吧", "大概要等几天", "能帮我催一下吗",
    "那我申请退款了", "麻烦快一点，我着急用", "怎么这么慢", "谢谢", "还有别的颜色吗",
]
AGENT_GREETINGS = [
    "您好，欢迎光临，请问有什么可以帮您？", "亲，您好，很高兴为您服务～", "您好，我是客服小美，请问有什么可以帮到您？",
]
AGENT_REPLIES = [
    "请您提供一下订单号，我这边帮您查询", "已经为您查到了，包裹正在派送中，预计明天送达",
    "这款目前有货，今天下单48小时内发货", "支持七天无理由退货，请您放心购买",
    "不好意思让您久等了，我已经帮您催促仓库", "这款喂食器支持定时投喂，出粮口堵了可以清理一下",
    "感恩您的支持，这边给您申请了一张5元优惠券", "发票可以在订单详情页申请，电子发票一般24小时内开具",
    "尺码是标准的，您平时穿M的话建议选M", "地址还可以修改，我这边帮您备注好了",
    "非常抱歉给您带来不便，破损的话我们给您补发一个", "您稍等，我帮您确认一下库存",
]
AGENT_VIOLATIONS = [
    "哦，这个不知道", "嗯嗯，你自己去详情页看吧", "啊？你说什么", "喂，还在吗", "哎，这个我也没办法",
    "哦哦好的", "噢，那你等着吧", "喔，这个要问仓库", "恩，已经发了", "这个啊，明天再说吧",
]
AGENT_CLOSINGS = [
    "感谢您的耐心等待，祝您生活愉快！", "还有其他可以帮您的吗？祝您购物愉快～", "谢谢您的咨询，有问题随时联系我们",
]


@dataclass
class SimStats:
    conversations: int = 0
    messages: int = 0
    agent_messages: int = 0
    violations: int = 0
    slow_first_replies: int = 0
    abandoned: int = 0  # left with an unanswered question (closed by inactivity)
    agents: set[str] = field(default_factory=set)  # agents who answered at least once
    alerts: AlertCount | None = None  # what the worker raised meanwhile (None: not counted)
    started: float = field(default_factory=time.monotonic)

    def summary(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        text = (f"simulator: {self.messages} messages ({self.messages / elapsed:.1f}/s) in "
                f"{self.conversations} conversations; {self.agent_messages} agent messages, "
                f"{self.violations} with a violation, {self.slow_first_replies} slow first replies, "
                f"{self.abandoned} left unanswered")
        if self.alerts is not None:
            text += "\n" + self.alerts.summary(len(self.agents), elapsed)
        return text


@dataclass
class AlertCount:
    """What the floor would see: the alerts the worker raised during the run (read from ``chat.alerts``),
    as raw alerts and as wall rows (one per offending message), per agent-hour."""

    alert_ids: set[str] = field(default_factory=set)
    rows: set[tuple[str, str]] = field(default_factory=set)
    critical_rows: set[tuple[str, str]] = field(default_factory=set)
    problem: str | None = None

    def add(self, payload: bytes | None) -> None:
        try:
            alert = json.loads(payload or b"")
        except ValueError:
            return
        if not isinstance(alert, dict) or "alert_id" not in alert or alert.get("kind") == "action":
            return
        self.alert_ids.add(str(alert["alert_id"]))
        row = (str(alert.get("conversation_id")), str(alert.get("message_id") or alert["alert_id"]))
        self.rows.add(row)
        if alert.get("severity") == "critical":
            self.critical_rows.add(row)

    def summary(self, agents: int, elapsed_s: float) -> str:
        if self.problem:
            return f"simulator: alerts not counted ({self.problem})"
        agent_hours = max(agents, 1) * elapsed_s / 3600
        critical = len(self.critical_rows) / len(self.rows) if self.rows else 0.0
        return (f"simulator: {len(self.alert_ids)} alerts = {len(self.alert_ids) / agent_hours:.1f} per agent-hour; "
                f"{len(self.rows)} wall rows (one per offending message) = {len(self.rows) / agent_hours:.1f} per "
                f"agent-hour, {critical:.0%} critical; {agents} agents over {elapsed_s / 60:.1f} min")


class AlertCounter:
    """Counts ``chat.alerts`` records stamped after the run started (a broker that answers "latest" a
    little early may hand back a few older records: their timestamps leave them out)."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.count = AlertCount()
        self.since_ms = int(time.time() * 1000)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False,
                                        auto_offset_reset="latest", fetch_max_wait_ms=200)
            await consumer.start()
            self._consumer = consumer
            partitions = None
            for _ in range(25):
                await consumer.topics()
                partitions = consumer.partitions_for_topic(self.topic)
                if partitions:
                    break
                await asyncio.sleep(0.2)
            if not partitions:
                raise RuntimeError(f"no topic {self.topic}")
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            for tp in tps:  # resolve "latest" now, before the first message is produced
                await consumer.position(tp)
            self._task = asyncio.create_task(self._run())
        except (KafkaError, OSError, RuntimeError) as exc:
            self.count.problem = f"{type(exc).__name__}: {exc}"
            await self.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    if record.timestamp >= self.since_ms:
                        self.count.add(record.value)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, KafkaError):
                await self._task
            self._task = None
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()
            self._consumer = None


class Simulator:
    def __init__(self, producer: Any, topic: str, *, rate: float,
                 violation_share: float, rng: random.Random) -> None:
        self.producer = producer
        self.topic = topic
        self.rate = rate
        self.violation_share = violation_share
        self.rng = rng
        self.stats = SimStats()
        self.mean_gap_s = 6.0  # mean pause between two messages of one conversation

    async def send(self, conv: dict[str, Any], sender: str, etype: str, text: str | None = None) -> None:
        event = {
            "message_id": uuid.uuid4().hex, "conversation_id": conv["id"], "shop_id": conv["shop"],
            "team_id": conv["team"], "agent_id": conv["agent"], "customer_id": conv["customer"],
            "sender": sender, "type": etype, "ts": int(time.time() * 1000),
        }
        if text is not None:
            event["text"] = text
        await self.producer.send(self.topic, json.dumps(event, ensure_ascii=False).encode(),
                                 key=conv["id"].encode())
        self.stats.messages += 1

    def agent_text(self, pool: list[str]) -> str:
        self.stats.agent_messages += 1
        if self.rng.random() < self.violation_share:
            self.stats.violations += 1
            return self.rng.choice(AGENT_VIOLATIONS)
        return self.rng.choice(pool)

    def pause(self) -> float:
        return self.rng.expovariate(1 / self.mean_gap_s)

    async def conversation(self) -> None:
        rng = self.rng
        shop = rng.choice(list(SHOPS))
        team = rng.choice(SHOPS[shop])
        conv = {"id": f"conv-{uuid.uuid4().hex[:12]}", "shop": shop, "team": team,
                "agent": rng.choice(AGENTS[team]), "customer": f"cust-{rng.randrange(10**6):06d}"}
        self.stats.conversations += 1
        await self.send(conv, "system", "conversation_started")
        await self.send(conv, "customer", "message", rng.choice(CUSTOMER_OPENERS))
        roll = rng.random()
        first_wait = rng.uniform(26, 40) if roll < 0.05 else rng.uniform(10, 25) if roll < 0.2 else rng.uniform(1, 10)
        self.stats.slow_first_replies += roll < 0.05
        await asyncio.sleep(first_wait)
        await self.send(conv, "agent", "message", self.agent_text(AGENT_GREETINGS))
        self.stats.agents.add(conv["agent"])
        for _ in range(rng.randint(1, 4)):
            await asyncio.sleep(self.pause())
            await self.send(conv, "customer", "message", rng.choice(CUSTOMER_FOLLOWUPS))
            if rng.random() < 0.05:  # handed to a colleague (转接): the new agent owns the wait
                others = [a for a in AGENTS[conv["team"]] if a != conv["agent"]]
                if others:
                    conv["agent"] = rng.choice(others)
                    await asyncio.sleep(self.pause() / 2)
                    await self.send(conv, "system", "transferred")
            await asyncio.sleep(self.pause())
            if rng.random() < 0.03:  # the customer's question is never answered: closed by inactivity
                self.stats.abandoned += 1
                return
            await self.send(conv, "agent", "message", self.agent_text(AGENT_REPLIES))
        await asyncio.sleep(self.pause())
        await self.send(conv, "agent", "message", self.agent_text(AGENT_CLOSINGS))
        await self.send(conv, "system", "conversation_ended")

    async def run(self, duration_s: float | None) -> SimStats:
        # About 8 messages per conversation over ~8 pauses: start conversations at the
        # rate that keeps the total message rate near ``rate``.
        starts_per_s = self.rate / 8.0
        deadline = None if duration_s is None else time.monotonic() + duration_s
        tasks: set[asyncio.Task[None]] = set()
        try:
            while deadline is None or time.monotonic() < deadline:
                task = asyncio.create_task(self.conversation())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                await asyncio.sleep(self.rng.expovariate(starts_per_s))
        finally:
            for task in tasks:
                task.cancel()
            for task in list(tasks):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.producer.flush()
        return self.stats


async def run_simulator(settings: Settings, *, rate: float, duration_s: float | None,
                        violation_share: float, seed: int | None, via: str = "kafka", api_url: str = "",
                        token: str = "", count_alerts: bool = True) -> SimStats:
    from zhijian.ingest_client import HttpProducer  # --via http: POST /api/events instead of Kafka

    producer: Any = HttpProducer(api_url, token) if via == "http" else \
        AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=5)
    await producer.start()
    counter = AlertCounter(settings.bootstrap_servers, settings.topics.alerts) if count_alerts else None
    if counter is not None:
        await counter.start()
    sim = Simulator(producer, settings.topics.messages, rate=rate, violation_share=violation_share,
                    rng=random.Random(seed))
    sim.stats.alerts = counter.count if counter is not None else None
    print(f"simulator: ~{rate:g} messages/s into {settings.topics.messages}{' over HTTP' * (via == 'http')}, "
          f"{violation_share:.0%} of agent messages with a violation", flush=True)
    # SIGTERM (how `zhijian up` stops its children) ends the run like its duration would: with the summary
    loop, main, stopping = asyncio.get_running_loop(), asyncio.current_task(), asyncio.Event()

    def stop() -> None:
        stopping.set()
        if main is not None:
            main.cancel()
    handled = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread: no handler
        loop.add_signal_handler(signal.SIGTERM, stop)
        handled = True
    try:
        stats = await sim.run(duration_s)
        if counter is not None and duration_s is not None:
            await asyncio.sleep(2.0)  # the alerts of the last messages are still on their way
        return stats
    except asyncio.CancelledError:
        if not stopping.is_set():
            raise
        return sim.stats
    finally:
        if handled:
            loop.remove_signal_handler(signal.SIGTERM)
        await producer.stop()
        if counter is not None:
            await counter.stop()
        print(sim.stats.summary(), flush=True)
