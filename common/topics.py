"""A topic that does not exist: one line naming it, the cluster, and how to create it.

Neither service creates a topic (a misspelt name must not become a new
topic, and Event Hubs' Kafka endpoint creates event hubs only for an
identity with Manage rights). Each waits for its topic, checking with
backoff, and says so at once, then at most once per interval with how many
checks found it missing since; each service's ``/readyz`` says why meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from common import events
from common.repeats import Repeats

#: How often, at most, a missing topic is said again.
INTERVAL_S = 10.0


def how_to_create(topic: str, servers: Sequence[str], namespace_host: str | None) -> str:
    """The command that creates *topic* where *servers* are, or in the Event Hubs namespace."""
    if namespace_host is not None:
        namespace = namespace_host.split(".", 1)[0]
        return (
            "topics are never created by the services; an event hub is a topic: "
            f"az eventhubs eventhub create --resource-group <group> --namespace-name {namespace} "
            f"--name {topic} --partition-count 10 (or + Event Hub in the portal)"
        )
    return (
        "topics are never created by the services: "
        f"kafka-topics.sh --bootstrap-server {','.join(servers)} --create --topic {topic} "
        "--partitions 10 (in compose: docker compose exec kafka /opt/kafka/bin/kafka-topics.sh "
        "--bootstrap-server kafka:19092 ...)"
    )


class MissingTopic:
    """Says that the service's topic does not exist: at once, then at most once per interval."""

    def __init__(
        self,
        topic: str,
        servers: Sequence[str],
        namespace_host: str | None,
        repeats: Repeats | None = None,
    ) -> None:
        self._topic = topic
        self._servers = ",".join(servers)
        self._hint = how_to_create(topic, servers, namespace_host)
        self._repeats = repeats or Repeats(INTERVAL_S)
        self._log = structlog.get_logger()
        #: Why the service is not ready while its topic is missing: for /readyz.
        self.why = f"topic {topic} does not exist in {self._servers}; {self._hint}"

    def found_missing(self) -> None:
        """A check found no such topic: said when due, counting the checks since."""
        count = self._repeats.add(self._topic)
        if count is not None:
            self._log.error(
                events.TOPIC_MISSING,
                topic=self._topic,
                bootstrap_servers=self._servers,
                hint=self._hint,
                repeated=count - 1,
            )
