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
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer

from zhijian.settings import Settings

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
    started: float = field(default_factory=time.monotonic)

    def summary(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return (f"simulator: {self.messages} messages ({self.messages / elapsed:.1f}/s) in "
                f"{self.conversations} conversations; {self.agent_messages} agent messages, "
                f"{self.violations} with a violation, {self.slow_first_replies} slow first replies, "
                f"{self.abandoned} left unanswered")


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
                        token: str = "") -> SimStats:
    from zhijian.ingest_client import HttpProducer  # --via http: POST /api/events instead of Kafka

    producer: Any = HttpProducer(api_url, token) if via == "http" else \
        AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=5)
    await producer.start()
    sim = Simulator(producer, settings.topics.messages, rate=rate, violation_share=violation_share,
                    rng=random.Random(seed))
    print(f"simulator: ~{rate:g} messages/s into {settings.topics.messages}{' over HTTP' * (via == 'http')}, "
          f"{violation_share:.0%} of agent messages with a violation", flush=True)
    try:
        return await sim.run(duration_s)
    finally:
        await producer.stop()
        print(sim.stats.summary(), flush=True)
