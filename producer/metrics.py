"""The producer's Prometheus metrics (OpenTelemetry messaging names where one exists)."""

from prometheus_client import Counter

from common.histogram import BatchHistogram

SENT = Counter(
    "messaging_client_sent_messages",
    "Messages the broker acknowledged.",
    ["messaging_destination_name"],
)
SEND_ERRORS = Counter(
    "producer_send_errors",
    "Messages that could not be delivered, by error type.",
    ["messaging_destination_name", "error_type"],
)
SENT_BYTES = Counter(
    "producer_sent_bytes",
    "Bytes of keys and values the broker acknowledged.",
    ["messaging_destination_name"],
)
SOURCE_SKIPPED = Counter(
    "producer_source_skipped",
    "Input a source could not make a record of (a bad JSON line, say): logged, never sent.",
    ["messaging_destination_name"],
)
DELIVERY_DURATION = BatchHistogram(
    "messaging_client_operation_duration_seconds",
    "Time from send() to the broker's acknowledgement.",
    ["messaging_operation_name", "messaging_destination_name"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
