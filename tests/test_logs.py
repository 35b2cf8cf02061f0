"""Every log line is one JSON object, kafka-python's own records included."""

from __future__ import annotations

import json
import logging

import pytest

from common.logging import Sampler, configure


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
