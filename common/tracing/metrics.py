"""What became of the spans, and of the trace context records carried (Prometheus)."""

from prometheus_client import Counter

SPANS_EXPORTED = Counter(
    "tracing_spans_exported",
    "Spans the trace backend (or the console) took.",
)
SPANS_DROPPED = Counter(
    "tracing_spans_dropped",
    "Spans lost, by reason: export_failed, queue_full, stopped.",
    ["reason"],
)
CONTEXT_INVALID = Counter(
    "tracing_context_invalid",
    "Records whose traceparent header could not be read: ignored, the record handled.",
    ["messaging_destination_name"],
)
