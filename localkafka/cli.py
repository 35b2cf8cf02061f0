"""``python -m localkafka start|stop|status``: one JSON object on stdout, errors on stderr."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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
        if name == "start":
            cmd.add_argument("--plaintext-port", type=int, help="default: a free port")
            cmd.add_argument("--sasl-ssl-port", type=int, help="default: a free port")
            cmd.add_argument(
                "--timeout", type=float, default=60.0, help="seconds to wait (default: 60)"
            )
    return parser


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


_COMMANDS = {"start": _start, "stop": _stop, "status": _status, "create-topic": _create_topic}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except LocalKafkaError as exc:
        print(f"localkafka: {exc}", file=sys.stderr)
        return 1
