"""The consumer's Prometheus metrics (OpenTelemetry messaging names where one exists)."""

from prometheus_client import Counter, Gauge

from common.histogram import BatchHistogram

CONSUMED = Counter(
    "messaging_client_consumed_messages",
    "Messages received and processed, by kind: our producer's envelope, any other "
    "value, or a tombstone (no value).",
    ["messaging_destination_name", "messaging_consumer_group_name", "kind"],
)
HANDLED = Counter(
    "consumer_handled_records",
    "Calls of the handler by outcome: ok; retried (failed, tried again later); "
    "dead_lettered (given up, written to the dead-letter topic); failed (given up with "
    "no dead-letter topic: the consumer stops).",
    ["messaging_destination_name", "outcome"],
)
PROCESS_DURATION = BatchHistogram(
    "messaging_process_duration_seconds",
    "Time spent processing one message: the handler, and the loop's own work around it.",
    ["messaging_destination_name"],
    buckets=(1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.1, 1),
)
END_TO_END = BatchHistogram(
    "consumer_end_to_end_latency_seconds",
    "Time from the send time in our envelope (else the record's timestamp) to processing; "
    "every record of a poll of up to 64, a sample spread over larger polls.",
    ["messaging_destination_name"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
ASSIGNED_PARTITIONS = Gauge(
    "consumer_assigned_partitions",
    "How many partitions this consumer owns.",
    ["messaging_destination_name"],
)
PARTITION_OWNED = Gauge(
    "consumer_partition_owned",
    "1 for each partition this consumer owns (the dashboard's ownership map).",
    ["messaging_destination_name", "messaging_destination_partition_id"],
)
REBALANCES = Counter(
    "consumer_rebalances",
    "Rebalances this consumer completed (each assignment it received).",
)
LAG = Gauge(
    "consumer_lag_records",
    "Messages in an owned partition not processed yet (high watermark - next offset).",
    ["messaging_destination_name", "messaging_destination_partition_id"],
)
COMMITS = Counter("consumer_commits", "Offset commits the broker accepted.")
COMMIT_FAILURES = Counter(
    "consumer_commit_failures",
    "Offset commits that failed, by error type.",
    ["error_type"],
)
RECORDS_IN_FLIGHT = Gauge(
    "consumer_records_in_flight",
    "Records taken from the topic and not done, when records run side by side "
    "(CONSUMER_ORDERING key or unordered, or an async handler; with a batch handler, "
    "batches): running, or waiting (behind a record of their key or partition, or for "
    "a free worker).",
    ["messaging_destination_name", "state"],
)
MAX_IN_FLIGHT = Gauge(
    "consumer_max_in_flight",
    "CONSUMER_MAX_IN_FLIGHT: most records in flight at once (1 when records of a "
    "partition run one at a time on the polling thread).",
    ["messaging_destination_name"],
)
OUTPUTS = Counter(
    "consumer_outputs",
    "Records the handler returned to publish (consumer.handler.Output), by the topic they "
    "went to and outcome: written (acknowledged by the broker) or failed (the consumer stops).",
    ["messaging_destination_name", "outcome"],
)
