"""Replay's filters pick dead letters by their original partition, offsets and exception,
and a replay without a dead-letter topic to read is one line, exit 2."""

from __future__ import annotations

import subprocess
import sys

from consumer import dead_letter
from consumer.replay import Filters
from tests.conftest import REPO

HEADERS = {
    dead_letter.ORIGINAL_PARTITION: "3",
    dead_letter.ORIGINAL_OFFSET: "1250",
    dead_letter.EXCEPTION_TYPE: "consumer.handler.RecordRefused",
}


def test_no_filter_matches_every_dead_letter() -> None:
    assert Filters().match(HEADERS)


def test_each_filter_narrows() -> None:
    assert Filters(partition=3, from_offset=1200, to_offset=1300).match(HEADERS)
    assert not Filters(partition=4).match(HEADERS)
    assert not Filters(from_offset=1251).match(HEADERS)
    assert not Filters(to_offset=1249).match(HEADERS)


def test_an_exception_by_its_name_or_in_full() -> None:
    assert Filters(exception="RecordRefused").match(HEADERS)
    assert Filters(exception="consumer.handler.RecordRefused").match(HEADERS)
    assert not Filters(exception="ValueError").match(HEADERS)


def test_a_record_without_our_headers_is_not_replayed() -> None:
    assert not Filters().match({})


def test_replay_without_a_dead_letter_topic_is_one_line() -> None:
    env = {"PATH": "/usr/bin:/bin", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
           "KAFKA_TOPIC": "t", "KAFKA_GROUP_ID": "g"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "consumer", "replay"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "CONSUMER_DEAD_LETTER_TOPIC is missing" in result.stderr
    assert "Traceback" not in result.stderr
