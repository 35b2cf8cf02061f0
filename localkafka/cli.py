"""``python -m localkafka start|stop|status``: one JSON object on stdout, errors on stderr."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from localkafka import front
from localkafka.broker import create_topic, default_data_dir, start, status, stop
from localkafka.errors import LocalKafkaError

#: Exit status of ``status`` when no broker runs, as LSB init scripts use it.
NOT_RUNNING = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m localkafka",
        description="Run a real Apache Kafka broker on loopback, for tests and demos.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("start", "start the broker in the background and wait until it answers"),
        ("stop", "stop the broker; its data stays for the next start"),
        ("status", "say whether the broker runs (exit 3 when it does not)"),
        ("create-topic", "create a topic on the running broker (no-op if it exists)"),
        ("front", "show or change the Event Hubs front's rules (new connections follow them)"),
    ):
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument(
            "--data-dir",
            type=Path,
            default=default_data_dir(),
            help="where the broker keeps its settings, data and logs (default: %(default)s)",
        )
        if name == "create-topic":
            cmd.add_argument("topic", help="topic name")
            cmd.add_argument("--partitions", type=int, default=10, help="default: 10")
        if name == "front":
            # Only the rules given change; SUPPRESS leaves the others out of args.
            rule = functools.partial(cmd.add_argument, default=argparse.SUPPRESS)
            rule(
                "--drop-api-versions-from",
                type=_number_or_off(int),
                help="reset connections opening with ApiVersions at or above this version "
                "(default 4, as Event Hubs in 2025); 'off' drops none",
            )
            rule("--tier", choices=("standard", "premium", "dedicated"))
            rule("--commits-per-second", type=float, help="per partition (default 4)")
            rule("--ingress-records-per-second", type=_number_or_off(float), help="or off")
            rule("--egress-bytes-per-second", type=_number_or_off(float), help="or off")
            rule("--idle-close-seconds", type=float, help="default 240")
            rule(
                "--forget-producers-before",
                type=_time_or_now,
                help="refuse every produce of idempotent producers first seen before this "
                "time (seconds since the epoch, or now) with INVALID_PRODUCER_ID_MAPPING; off",
            )
        if name == "start":
            cmd.add_argument("--plaintext-port", type=int, help="default: a free port")
            cmd.add_argument("--sasl-ssl-port", type=int, help="default: a free port")
            cmd.add_argument(
                "--timeout", type=float, default=60.0, help="seconds to wait (default: 60)"
            )
    return parser


def _number_or_off(kind: type[float]) -> Callable[[str], float | None]:
    def parse(text: str) -> float | None:
        return None if text == "off" else kind(text)

    return parse


def _time_or_now(text: str) -> float | None:
    if text == "off":
        return None
    return time.time() if text == "now" else float(text)


def _front(args: argparse.Namespace) -> int:
    given = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(front.Rules)
        if hasattr(args, field.name)
    }
    args.data_dir.mkdir(parents=True, exist_ok=True)
    rules = front.configure(args.data_dir, **given) if given else front.Rules.load(args.data_dir)
    _emit(dataclasses.asdict(rules))
    return 0


def _emit(payload: dict[str, object]) -> None:
    print(json.dumps(payload, indent=2))


def _start(args: argparse.Namespace) -> int:
    if (running := status(args.data_dir)) is not None:
        print(f"localkafka: already running (pid {running.pid})", file=sys.stderr)
        _emit({**running.as_dict(), "already_running": True})
        return 0
    broker = start(
        args.data_dir,
        plaintext_port=args.plaintext_port,
        sasl_ssl_port=args.sasl_ssl_port,
        timeout=args.timeout,
    )
    _emit({**broker.as_dict(), "already_running": False})
    return 0


def _stop(args: argparse.Namespace) -> int:
    _emit({"stopped": stop(args.data_dir), "data_dir": str(args.data_dir.resolve())})
    return 0


def _status(args: argparse.Namespace) -> int:
    running = status(args.data_dir)
    if running is None:
        _emit({"running": False, "data_dir": str(args.data_dir.resolve())})
        return NOT_RUNNING
    _emit({"running": True, **running.as_dict()})
    return 0


def _create_topic(args: argparse.Namespace) -> int:
    broker = status(args.data_dir)
    if broker is None:
        raise LocalKafkaError(f"no broker runs in {args.data_dir}; start one first")
    created = create_topic(broker, args.topic, args.partitions)
    _emit({"topic": args.topic, "partitions": args.partitions, "created": created})
    return 0


_COMMANDS = {
    "start": _start,
    "stop": _stop,
    "status": _status,
    "create-topic": _create_topic,
    "front": _front,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except LocalKafkaError as exc:
        print(f"localkafka: {exc}", file=sys.stderr)
        return 1
