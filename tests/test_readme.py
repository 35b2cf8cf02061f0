"""The README documents exactly the variables the code reads and the metrics it exports."""

from __future__ import annotations

import re

from common.config import ConsumerSettings, ProducerSettings, env_variables
from tests.conftest import REPO, our_metric_names

README = (REPO / "README.md").read_text()


def test_every_variable_is_documented() -> None:
    variables = set(env_variables(ProducerSettings)) | set(env_variables(ConsumerSettings))
    missing = sorted(v for v in variables if f"`{v}`" not in README)
    assert not missing


def test_every_documented_variable_is_read() -> None:
    variables = set(env_variables(ProducerSettings)) | set(env_variables(ConsumerSettings))
    rows = re.findall(r"^\| `([A-Z_]+)`", README, flags=re.MULTILINE)
    assert rows
    assert sorted(set(rows) - variables) == []


def test_every_metric_is_documented() -> None:
    names = our_metric_names()
    assert len(names) >= 13  # the discovery found them: 13 since invalid messages retired
    missing = sorted(n for n in names if f"`{n}`" not in README)
    assert not missing


def test_every_documented_metric_is_exported() -> None:
    rows = re.findall(r"^\| `([a-z_]+)` \| (?:counter|gauge|histogram)", README, flags=re.MULTILINE)
    assert sorted(set(rows) - our_metric_names()) == []
