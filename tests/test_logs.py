"""Every log line is one JSON object, kafka-python's own records included."""

from __future__ import annotations

import json
import logging
import time

import pytest
from kafka.net.selector import NetworkSelector

from common.logging import Sampler, configure
from producer.service import _not_a_gil_wait


def test_a_library_error_is_one_line_without_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure("consumer", "INFO", "json", secrets=["s3cret-key"])
    try:
        raise OSError("socket torn down, s3cret-key")
    except OSError:
        logging.getLogger("kafka.net.transport").exception("Error receiving network data")

    (line,) = capsys.readouterr().out.splitlines()
    event = json.loads(line)
    assert event["logger"] == "kafka.net.transport"
    assert event["level"] == "error"
    assert event["error"] == "OSError: socket torn down, [REDACTED]"
    assert "Traceback" not in line
    assert "exception" not in event


@pytest.mark.parametrize(
    ("every", "logged"),
    [(1, "TTTTTTT"), (3, "T..T..T"), (7, "T......"), (0, ".......")],
)
def test_log_message_every_logs_the_first_of_every_n(every: int, logged: str) -> None:
    sample = Sampler(every)
    assert "".join("T" if sample() else "." for _ in logged) == logged


def test_the_producer_drops_kafka_pythons_gil_wait_warning_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # kafka-python's own IO loop, with its slow-task threshold lowered so that a
    # step waiting 10 ms sets the warning off, as our send loop does at full speed.
    net = NetworkSelector(slow_task_threshold_secs=0.001)

    async def slow_step() -> None:
        time.sleep(0.01)

    selector_log = logging.getLogger("kafka.net.selector")
    with caplog.at_level(logging.WARNING, logger="kafka.net.selector"):
        net.run(slow_step)
        assert "threshold" in caplog.text, "kafka-python no longer warns: the filter is dead"
        caplog.clear()
        selector_log.addFilter(_not_a_gil_wait)
        try:
            net.run(slow_step)
            selector_log.warning("Wakeup socket returned empty. Rebuilding.")
        finally:
            selector_log.removeFilter(_not_a_gil_wait)
    assert "threshold" not in caplog.text
    assert "Wakeup socket returned empty" in caplog.text  # its other warnings pass
