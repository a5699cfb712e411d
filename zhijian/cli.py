"""The ``zhijian`` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from zhijian.core import redaction
from zhijian.core.settings import Settings


def _host_port(bootstrap: str) -> tuple[str, int]:
    first = bootstrap.split(",")[0]
    host, _, port = first.rpartition(":")
    return host or "127.0.0.1", int(port or 9092)


def cmd_broker(settings: Settings, _: argparse.Namespace) -> int:
    from zhijian.kafka.broker import EmbeddedBroker, ensure_topics

    host, port = _host_port(settings.bootstrap_servers)
    broker = EmbeddedBroker(host, port, log_path=settings.data_dir / "logs" / "broker.log", tied=True)
    broker.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        created = asyncio.run(
            ensure_topics(broker.bootstrap_servers, settings.topics.all(), partitions=settings.partitions,
                          compacted=settings.topics.compacted())
        )
        print(f"broker ready on {broker.bootstrap_servers}; created topics: {', '.join(created) or 'none'}",
              flush=True)
        while not stop.wait(0.5):
            if broker.process is None or broker.process.poll() is not None:
                print("broker process exited", file=sys.stderr, flush=True)
                return 1
        return 0
    finally:
        broker.stop()


def cmd_topics(settings: Settings, _: argparse.Namespace) -> int:
    from zhijian.kafka.broker import ensure_topics

    created = asyncio.run(
        ensure_topics(settings.bootstrap_servers, settings.topics.all(), partitions=settings.partitions,
                      compacted=settings.topics.compacted(),
                      replication_factor=settings.replication_factor)
    )
    print(f"created: {', '.join(created) or 'none (all exist)'}")
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from faust.worker import Worker

    from stream.app import create_app

    app = create_app(settings)
    Worker(app, loglevel=args.loglevel, quiet=True).execute_from_commandline()
    return 0


def cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from api.auth import new_token

    token = settings.admin_token
    if not token:
        token = new_token()
        print(f"ZHIJIAN_ADMIN_TOKEN not set; generated admin token: {token}", flush=True)
    app = create_app(settings, token)
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_level=args.loglevel,
                ws="websockets-sansio")
    return 0


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from zhijian.simulator import run_simulator

    asyncio.run(run_simulator(settings, rate=args.rate, duration_s=args.duration,
                              violation_share=args.violation_share, seed=args.seed, via=args.via,
                              api_url=args.api_url or f"http://{settings.api_host}:{settings.api_port}",
                              token=args.token or settings.admin_token))
    return 0


def cmd_notify(settings: Settings, args: argparse.Namespace) -> int:
    from zhijian.notify.service import run_notifier

    asyncio.run(run_notifier(settings, args.loglevel))
    return 0


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from zhijian.stack import run_stack

    return run_stack(settings, demo=args.demo, rate=args.rate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zhijian", description="Real-time 质检 for live chats.")
    parser.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("broker", help="run the embedded Tansu broker and create the topics")
    sub.add_parser("topics", help="create the topics on KAFKA_BROKER (e.g. Apache Kafka)")
    sub.add_parser("worker", help="run the Faust stream worker")
    sub.add_parser("api", help="run the API and dashboard")
    sub.add_parser("notify", help="push alerts to DingTalk/WeCom/Feishu/webhooks and run the escalation ladder")
    simulate = sub.add_parser("simulate", help="produce realistic demo chat traffic")
    simulate.add_argument("--rate", type=float, default=20.0, help="messages per second")
    simulate.add_argument("--duration", type=float, default=None, help="seconds (default: forever)")
    simulate.add_argument("--violation-share", type=float, default=0.08,
                          help="share of agent messages that break a rule")
    simulate.add_argument("--seed", type=int, default=None)
    simulate.add_argument("--via", choices=["kafka", "http"], default="kafka",
                          help="produce to Kafka, or POST /api/events like a chat platform")
    simulate.add_argument("--api-url", default=None, help="with --via http (default: ZHIJIAN_API_HOST/PORT)")
    simulate.add_argument("--token", default=None, help="ingest token for --via http (default: the admin token)")
    up = sub.add_parser("up", help="start broker, worker and API (and the simulator with --demo)")
    up.add_argument("--demo", action="store_true", help="also run the traffic simulator")
    up.add_argument("--rate", type=float, default=5.0, help="simulator messages per second")
    from zhijian import db_commands, qa_commands, source_commands, user_commands

    qa_commands.add_arguments(sub)
    db_commands.add_arguments(sub)
    user_commands.add_arguments(sub)
    source_commands.add_arguments(sub)
    return parser


COMMANDS = {
    "broker": cmd_broker,
    "topics": cmd_topics,
    "worker": cmd_worker,
    "api": cmd_api,
    "simulate": cmd_simulate,
    "up": cmd_up,
    "notify": cmd_notify,
}


def main(argv: Sequence[str] | None = None) -> int:
    redaction.install()  # before anything logs: no phone number, ID or token reaches a log
    args = build_parser().parse_args(argv)
    if args.command == "user":
        from zhijian import user_commands

        return user_commands.cmd_user(args)
    if args.command == "db":
        from zhijian import db_commands

        return db_commands.cmd_db(args)
    if args.command == "source":
        from zhijian import source_commands

        return source_commands.cmd_source(args)
    if args.command in ("detect", "eval", "train", "rollup"):  # offline tools
        from zhijian import qa_commands

        command = {"detect": qa_commands.cmd_detect, "eval": qa_commands.cmd_eval, "train": qa_commands.cmd_train,
                   "rollup": qa_commands.cmd_rollup}
        return command[args.command](args)
    if args.command not in ("worker",):
        logging.basicConfig(level=args.loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    redaction.add_secret(settings.admin_token)
    return COMMANDS[args.command](settings, args)


if __name__ == "__main__":
    sys.exit(main())
