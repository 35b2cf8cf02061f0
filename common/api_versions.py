"""Reach an endpoint that resets the connection on a new ApiVersions version.

Event Hubs reset every connection that opened with ApiVersions v4 from April to
September 2025 (kafka-python#2602, franz-go#1022). kafka-python 2.x answered
that by falling back to v0 (#2603); 3.0.12 opens each connection with v4 again,
forever. This adapter restores a fallback: when the peer closes a connection
while the client waits for its ApiVersions answer, later connections of this
process ask one version lower, down to v0, which every broker answers. A
broker that merely restarted costs at most a version nobody needs: v0 to v3
return the same list of APIs.

It wraps one private method of kafka-python (``KafkaConnection._get_api_versions``),
which is why kafka-python is pinned and ``tests/test_eventhubs_front.py`` runs
the services against a front that drops v4, and v3.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from kafka.errors import KafkaConnectionError
from kafka.net.connection import KafkaConnection
from kafka.protocol.broker_version_data import BrokerVersionData
from kafka.protocol.metadata import ApiVersionsRequest

_lock = threading.Lock()
_ceiling: int | None = None
_installed = False

_Method = Callable[..., Awaitable[Any]]


def _lower(tried: int) -> None:
    global _ceiling  # noqa: PLW0603  (one process-wide fact about the endpoint)
    with _lock:
        if tried == 0 or (_ceiling is not None and _ceiling < tried):
            return
        _ceiling = tried - 1
    # Info, not a warning: the client adapted, and nothing is wrong with the settings.
    structlog.get_logger().info(
        "connection.api_versions_lowered",
        refused_version=tried,
        next_version=tried - 1,
        reason="the broker closed the connection on ApiVersions",
    )


def _capped(known: BrokerVersionData, top: int) -> BrokerVersionData:
    # A connection to a broker the client already knows takes its ApiVersions
    # version from what that broker listed, not from _api_versions_idx.
    versions = dict(known.api_versions or {})
    low, high = versions.get(ApiVersionsRequest.API_KEY, (0, top))
    versions[ApiVersionsRequest.API_KEY] = (low, min(high, top))
    return BrokerVersionData(api_versions=versions)


def _wrap(original: _Method) -> _Method:
    @functools.wraps(original)
    async def get_api_versions(self: Any, *args: Any, **kwargs: Any) -> Any:
        if (top := _ceiling) is not None:
            self._api_versions_idx = min(self._api_versions_idx, top)
            if self.broker_version_data is not None:
                self.broker_version_data = _capped(self.broker_version_data, top)
        known = self.broker_version_data
        tried = (
            self._api_versions_idx
            if known is None
            else known.api_version(ApiVersionsRequest, max_version=self._api_versions_idx)
        )
        try:
            return await original(self, *args, **kwargs)
        except KafkaConnectionError:
            _lower(tried)
            raise

    return get_api_versions


def install() -> None:
    """Add the fallback to kafka-python's connections; calling it again does nothing."""
    global _installed  # noqa: PLW0603
    with _lock:
        if _installed:
            return
        original = KafkaConnection._get_api_versions
        KafkaConnection._get_api_versions = _wrap(original)
        _installed = True
