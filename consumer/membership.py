"""Whether this consumer may still handle the records it holds: is it still a member?

The group takes a member's partitions away once it has heard nothing from it
for the session timeout, and gives them to another member, which starts from
the committed offsets. A consumer cut off for that long cannot be told; it
can only count. So it handles nothing while the group has answered none of
its heartbeats, and it has not (re)joined, for longer than the session
timeout: what it holds is another member's now, or will be fetched again
once it is sure it is not.
"""

from __future__ import annotations

import time

import structlog
from kafka.structs import MemberState

from common import events
from common.clients import ConsumerClient


class Membership:
    """What the consumer knows of its own membership, between two polls."""

    def __init__(self, client: ConsumerClient, session_timeout_ms: int, group_id: str) -> None:
        self._client = client
        self._session_timeout_s = session_timeout_ms / 1000
        self._joined_at = time.monotonic()
        self._silent = False
        self._log = structlog.get_logger().bind(group_id=group_id)

    def joined(self) -> None:
        """The group (re)assigned us partitions: a member again, whatever came before."""
        self._joined_at = time.monotonic()
        self._silent = False

    def may_handle(self) -> bool:
        """False when the group has, or may have, given our partitions to another member."""
        if self._client.group_metadata().state == MemberState.UNJOINED:
            return False  # kafka-python's heartbeat thread heard it: expelled
        answered = self._client.last_heartbeat_answer()
        if answered is None:
            return True
        silent_s = time.monotonic() - max(answered, self._joined_at)
        if silent_s <= self._session_timeout_s:
            self._silent = False
            return True
        if not self._silent:
            self._silent = True
            self._log.warning(
                events.GROUP_SESSION_EXPIRED,
                silent_s=round(silent_s, 1),
                session_timeout_ms=int(self._session_timeout_s * 1000),
            )
        return False
