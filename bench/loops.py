"""The command line every contender's loop program shares, and its one JSON answer.

    python -m bench.<contender> produce --count N --warmup W --key-size K --value-size V
    python -m bench.<contender> consume --count N --warmup W [--set name=value ...]

Each contender runs in a process of its own, like the services and the Java
tools, reads the same environment the services read (``KAFKA_TOPIC``,
``KAFKA_GROUP_ID``...) and prints one JSON line: the messages timed and the
seconds they took, from the end of the warm-up to the last one. A contender
that cannot account for every message it sent exits non-zero instead.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from typing import NamedTuple


class Timed(NamedTuple):
    """How long *count* sends took, all acknowledged: on the clock, and in CPU of all threads."""

    seconds: float
    cpu_seconds: float


#: (count, warmup, key bytes, value bytes) -> the time *count* sends took.
Produce = Callable[[int, int, int, int], Timed]
#: (count, warmup, client settings) -> (messages received after the warm-up, seconds).
Consume = Callable[[int, int, Mapping[str, str]], tuple[int, float]]


class Incomplete(RuntimeError):
    """A contender's run lost or failed messages; its figure would be meaningless."""


def keys(key_size: int) -> list[bytes | None]:
    """1,000 keys of *key_size* bytes: they vary, as ours do, so messages spread over partitions."""
    return [f"{i:0{key_size}d}"[-key_size:].encode() if key_size else None for i in range(1000)]


def main(description: str, produce: Produce, consume: Consume) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("loop", choices=("produce", "consume"))
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--key-size", type=int, default=0)
    parser.add_argument("--value-size", type=int, default=100)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a client setting on top of the services' (consume only)",
    )
    args = parser.parse_args()
    if args.loop == "produce":
        took = produce(args.count, args.warmup, args.key_size, args.value_size)
        answer = {"messages": args.count, "seconds": took.seconds, "cpu_seconds": took.cpu_seconds}
    else:
        settings = dict(item.split("=", 1) for item in args.set)
        received, seconds = consume(args.count, args.warmup, settings)
        answer = {"messages": received, "seconds": seconds}
    print(json.dumps(answer))
