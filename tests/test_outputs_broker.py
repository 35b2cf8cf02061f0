"""Publishing from the handler against the real broker, directly and through the Event Hubs
front (docs/handlers.md, "Publishing from the handler"): records written by kcat, a
consumer SIGKILLed three times while it copies them to an output topic, and at each kill
every input below the group's committed offsets already has its output there; at the end,
read with Kafka's own console consumer at read_committed, no input's output is missing."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable

import pytest

from tests.clients import Feed, console_read, read_all
from tests.conftest import Cluster, Services, eventhubs_env
from tests.groups import committed

pytestmark = [pytest.mark.localkafka, pytest.mark.tools]

PARTITIONS = 4
KILLS = 3


def _inputs_with_outputs(bootstrap: str, topic: str) -> set[tuple[int, int]]:
    """(partition, offset) of each input whose output *topic* holds, from its header."""
    found = set()
    for record in read_all(bootstrap, topic):
        headers = dict(zip(record["headers"][::2], record["headers"][1::2], strict=True))
        partition, offset = headers["input"].split("/")
        found.add((int(partition), int(offset)))
    return found


@pytest.mark.parametrize(
    "case",
    [
        # Handler waits that leave records in flight at each kill however fast the
        # machine: at least 2 s of work a 1,000 records, serially (partition order),
        # 40 keys side by side (key order), or 10 partitions' batches side by side.
        ("kafka", "copies", "partition", "2"),
        ("kafka", "copies", "key", "80"),
        ("eventhubs", "copies_batch", "partition", "20"),
    ],
    ids="-".join,
)
def test_outputs_survive_kills_and_every_committed_input_has_its_output(
    services: Services, kafka: Cluster, new_topic: Callable[..., str], case: tuple[str, ...]
) -> None:
    via, handler, ordering, wait_ms = case
    topic, out = new_topic(PARTITIONS), new_topic(PARTITIONS)
    group = f"g-{topic}"
    bootstrap = kafka.bootstrap_servers
    env = {
        **(
            eventhubs_env(kafka, topic, group)
            if via == "eventhubs"
            else {
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "KAFKA_TOPIC": topic,
                "KAFKA_GROUP_ID": group,
            }
        ),
        "CONSUMER_HANDLER": f"tests.handlers:{handler}",
        "CONSUMER_OUTPUT_TOPIC": out,
        "CONSUMER_ORDERING": ordering,
        "HANDLER_WAIT_MS": wait_ms,
    }
    feed = Feed(bootstrap, topic)
    feed.more(1_000)
    killed, mid_run = [0], []
    for _ in range(KILLS):
        consumer = services.start("consumer", clean_env=via == "eventhubs", **env)
        # Killed once the group has more of it than at the last kill, mid-run.
        services.wait_until(
            lambda before=killed[-1]: (
                sum(committed(bootstrap, group, topic, PARTITIONS).values()) >= before + 200
            ),
            timeout=60,
            what="200 more committed",
        )
        consumer.stop(signal.SIGKILL)
        at_kill = committed(bootstrap, group, topic, PARTITIONS)
        covered = _inputs_with_outputs(bootstrap, out)
        # At least once: no input is committed before its output is acknowledged.
        assert [
            (p, o) for p, upto in at_kill.items() for o in range(upto) if (p, o) not in covered
        ] == []
        killed.append(sum(at_kill.values()))
        mid_run.append(killed[-1] < feed.sent)
        feed.more(500)

    last = services.start("consumer", clean_env=via == "eventhubs", **env)
    services.wait_until(
        lambda: sum(committed(bootstrap, group, topic, PARTITIONS).values()) == feed.sent,
        timeout=90,
        what="every input committed",
    )
    assert last.stop() == 0

    written = len(read_all(bootstrap, out))
    values = Counter(value for _, _, value in console_read(
        bootstrap, out, written, "--isolation-level", "read_committed"
    ))  # fmt: skip
    assert set(values) == {f"copy-{n}" for n in range(feed.sent)}
    again = sum(times - 1 for times in values.values())
    print(
        f"inputs {feed.sent}, outputs {written}, duplicates {again}, "
        f"committed at kills {killed[1:]}"
    )
    # A kill came before the inputs fed so far were all committed: records in flight.
    assert any(mid_run)
