"""kafka-python's shortcomings are worked around in one module, for one version of it:
an upgrade is a deliberate step, and each workaround is checked against the real
kafka-python, not against a copy of its text."""

from __future__ import annotations

import logging
import time
import tomllib

import pytest
from kafka.errors import InconsistentGroupProtocolError
from kafka.net.selector import NetworkSelector

from common.clients import _compat as kafka_compat
from tests.conftest import REPO


def test_the_installed_kafka_python_is_the_one_the_workarounds_were_reviewed_for() -> None:
    assert kafka_compat.installed_version() == kafka_compat.REVIEWED_FOR, (
        "kafka-python changed: review each function of common/clients/_compat.py against it, "
        "drop what it no longer needs, then set REVIEWED_FOR"
    )


def test_pyproject_pins_the_reviewed_version() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = [d for d in project["dependencies"] if d.startswith("kafka-python")]
    assert pins == [f"kafka-python[crc32c,lz4,snappy,zstd]=={kafka_compat.REVIEWED_FOR}"]


def test_every_workaround_says_its_version_its_reason_and_its_upstream() -> None:
    workarounds = [
        kafka_compat.lower_api_versions_after_a_reset,
        kafka_compat.honour_auto_creation_setting,
        kafka_compat.in_fatal_state,
        kafka_compat.force_close,
        kafka_compat.drop_slow_task_warning,
        kafka_compat.drop_per_answer_throttle_warning,
        kafka_compat.drop_assignor_mismatch_line,
        kafka_compat.CoordinatorWatch.say_coordinator_unavailable,
        kafka_compat.unblock_parked_fetches,
        kafka_compat.last_heartbeat_answer,
    ]
    for workaround in workarounds:
        doc = workaround.__doc__ or ""
        assert f"kafka-python {kafka_compat.REVIEWED_FOR}" in doc, workaround.__name__
        assert "Upstream:" in doc, workaround.__name__


def test_kafka_pythons_slow_task_warning_is_dropped_and_its_others_pass(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # kafka-python's own IO loop, with its slow-task threshold lowered so that a
    # step waiting 10 ms sets the warning off, as our loops do at full speed.
    net = NetworkSelector(slow_task_threshold_secs=0.001)

    async def slow_step() -> None:
        time.sleep(0.01)

    selector_log = logging.getLogger("kafka.net.selector")
    with caplog.at_level(logging.WARNING, logger="kafka.net.selector"):
        selector_log.removeFilter(kafka_compat.drop_slow_task_warning)
        net.run(slow_step)
        assert "threshold" in caplog.text, "kafka-python no longer warns: the filter is dead"
        caplog.clear()
        selector_log.addFilter(kafka_compat.drop_slow_task_warning)
        net.run(slow_step)
        selector_log.warning("Wakeup socket returned empty. Rebuilding.")
    assert "threshold" not in caplog.text
    assert "Wakeup socket returned empty" in caplog.text  # its other warnings pass


def test_the_assignor_mismatch_line_is_dropped_only_for_that_error() -> None:
    def record(*args: object) -> logging.LogRecord:
        return logging.LogRecord("kafka.coordinator", logging.ERROR, "", 0, "%s: %s", args, None)

    name = InconsistentGroupProtocolError.__name__
    assert not kafka_compat.drop_assignor_mismatch_line(record("JoinGroup", name))
    assert kafka_compat.drop_assignor_mismatch_line(record("JoinGroup", "NotCoordinatorError"))


def test_install_puts_each_filter_in_place_once() -> None:
    kafka_compat.install()
    kafka_compat.install()
    filters = logging.getLogger("kafka.net.connection").filters
    assert filters.count(kafka_compat.drop_per_answer_throttle_warning) == 1
