"""Every log event the services write, defined once: its name, level and fields.

Code logs ``events.MESSAGE_SENT``, never a string of its own, and
``docs/metrics-and-logs.md``'s table is checked against :data:`CATALOGUE` by
``tests/test_log_events.py``, as the settings and metrics tables are, so the
two cannot drift. Names are ``noun.verb``; data goes in fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True)
class Event:
    """One kind of log line: what operators search for, and what it carries."""

    name: str
    level: Level
    fields: tuple[str, ...]
    #: What it means, for the docs.
    says: str


#: Every event, by name, in the order the docs list them.
CATALOGUE: dict[str, Event] = {}


def _event(name: str, level: Level, fields: str, says: str) -> str:
    CATALOGUE[name] = Event(name, level, tuple(fields.split()), says)
    return name


# The life of a process.
SERVICE_STARTED = _event(
    "service.started",
    "info",
    "metrics_port topic bootstrap_servers security_protocol sasl_mechanism",
    "settings resolved, metrics served; sasl_mechanism is null without SASL",
)
SERVICE_FAILED = _event(
    "service.failed",
    "error",
    "reason error exception metrics_host metrics_port",
    "the process ends with exit status 1 (2 for invalid_client_settings, handler_invalid, "
    "handler_settings_invalid, source_invalid and transactions_unsupported: what was "
    "configured is wrong); reason is one "
    "of authentication_failed, authorization_failed, tls_verification_failed, "
    "credential_unavailable, metrics_port_unavailable, unsupported_codec, compression_refused, "
    "invalid_client_settings, handler_invalid, handler_settings_invalid, handler_failed, "
    "handler_unavailable, "
    "dead_letter_topic_missing, output_topic_missing, output_failed, "
    "transactions_unsupported, transactions_unavailable, source_invalid, source_unavailable, "
    "source_failed, "
    "records_undelivered, inputs_skipped, broker_unavailable (replay)",
)
SERVICE_STOPPED = _event(
    "service.stopped",
    "info",
    "signal",
    "stopped cleanly, on a signal, or (signal null) when the producer's source ended",
)
SETTING_UNREAD = _event(
    "setting.unread",
    "warning",
    "variable did_you_mean",
    "a variable with one of our prefixes (KAFKA_, EVENTHUBS_, PRODUCER_, CONSUMER_, "
    "METRICS_, LOG_) that no setting reads, a misspelt name most often; did_you_mean is the "
    "closest one that is read (null if none is close). The service starts all the same",
)
TLS_VERIFICATION_DISABLED = _event(
    "tls.verification_disabled",
    "warning",
    "setting",
    "KAFKA_SSL_VERIFY=false: the broker's certificate is not checked",
)

# The broker and the connection.
BROKER_UNAVAILABLE = _event(
    "broker.unavailable",
    "warning",
    "client bootstrap_servers attempt retry_in_s error",
    "no broker answered a new client; retried with backoff",
)
BROKER_THROTTLED = _event(
    "broker.throttled",
    "warning",
    "throttle_max_ms throttle_avg_ms hint",
    "at most once per 30 s while the broker throttles us, instead of kafka-python's "
    "warning per throttled answer",
)
API_VERSIONS_LOWERED = _event(
    "connection.api_versions_lowered",
    "info",
    "refused_version next_version reason",
    "the broker reset the connection on ApiVersions (Event Hubs did on v4 in 2025); "
    "later connections ask one version lower",
)
COORDINATOR_UNAVAILABLE = _event(
    "coordinator.unavailable",
    "warning",
    "node reason error repeated",
    "the consumer group's coordinator cannot be reached or found (node: the one tried); "
    "reason is tls, refused, timed_out, unresolved, disconnected or an error's name, error "
    "its detail. Said at once, then at most "
    "once per 10 s for the same reason, repeated counting the failed tries in between; "
    "instead of kafka-python's line per try",
)
LIBRARY_REPEATED = _event(
    "log.repeated",
    "warning",
    "logger message repeated interval_s",
    "a library's line (kafka-python, azure-identity) written again and again: it shows "
    "at most once per interval_s, and this line counts the ones held back",
)

# The topic.
TOPIC_READY = _event("topic.ready", "info", "topic partitions", "the producer's topic exists")
TOPIC_MISSING = _event(
    "topic.missing",
    "error",
    "topic bootstrap_servers hint repeated",
    "the topic does not exist; hint says how to create it (the services never do). Said at "
    "once, then at most once per 10 s, repeated counting the checks in between; both "
    "services keep checking and start when it appears, /readyz says why meanwhile",
)
TOPIC_UNAVAILABLE = _event(
    "topic.unavailable",
    "error",
    "topic error retry_in_s",
    "the topic could not be checked (error says why: the broker did not answer the "
    "metadata request); both services ask again in retry_in_s",
)

# The producer.
MESSAGE_SENT = _event(
    "message.sent",
    "info",
    "topic partition offset seq producer",
    "a send acknowledged; one in LOG_MESSAGE_EVERY",
)
MESSAGE_FAILED = _event(
    "message.failed", "warning", "topic seq error producer", "a send that will not be delivered"
)
PRODUCER_CLIENT_FAILED = _event(
    "producer.client_failed",
    "error",
    "error hint producer",
    "a send was refused with an error after which kafka-python fails every later send "
    "(PolicyViolation from a throttled Event Hubs, a record the broker refuses); the "
    "client is replaced",
)
PRODUCER_STALLED = _event(
    "producer.stalled",
    "error",
    "unanswered waited_s first_seq last_seq producer",
    "sends the client left unanswered past its delivery timeout; they count as failed "
    "and the client is replaced",
)
PRODUCER_FLUSH_FAILED = _event(
    "producer.flush_failed", "warning", "error producer", "the final flush ran out of time"
)
PRODUCER_CLOSED = _event("producer.closed", "info", "took_s producer", "flushed and closed")
PRODUCER_FINISHED = _event(
    "producer.finished",
    "info",
    "records delivered failed unsent skipped source_ended source_error producer",
    "with PRODUCER_SOURCE, after the last answer: every record the source gave is delivered, "
    "failed, or unsent (read ahead when a stop came); skipped counts input that made no "
    "record; exit status 0 only when every record was delivered and nothing was skipped",
)
SOURCE_SKIPPED = _event(
    "source.skipped",
    "warning",
    "where reason producer",
    "input the source could not make a record of (a bad JSON line: where is its line "
    "number); counted in producer_source_skipped_total, never sent",
)

# The consumer.
PARTITIONS_ASSIGNED = _event(
    "partitions.assigned",
    "info",
    "assigned assignment group_id",
    "assigned (new) and assignment (all owned after the change), as {topic: [partitions]}",
)
PARTITIONS_REVOKED = _event(
    "partitions.revoked",
    "info",
    "revoked assignment group_id",
    "handed back in a rebalance, after committing what was processed",
)
PARTITIONS_LOST = _event(
    "partitions.lost",
    "warning",
    "lost assignment group_id",
    "evicted from the group: what was processed and not committed is delivered again",
)
MESSAGE_RECEIVED = _event(
    "message.received",
    "info",
    "topic partition offset timestamp key headers kind size content seq producer group_id",
    "a record, one in LOG_MESSAGE_EVERY: headers as [[name, value], ...], content its first "
    "200 characters (base64:... for what is not text, null for a tombstone); seq and "
    "producer for our envelope",
)
HANDLER_RETRYING = _event(
    "handler.retrying",
    "warning",
    "topic partition offset records attempt until_it_works retry_in_s error exception group_id",
    "the handler failed on a record (a batch handler: on the batch of records from it "
    "on): it is tried again in retry_in_s, what is ordered behind it waiting; "
    "until_it_works for DependencyUnavailable, never dead-lettered",
)
RECORD_DEAD_LETTERED = _event(
    "record.dead_lettered",
    "warning",
    "topic partition offset attempts error exception dead_letter_topic dead_letter_partition "
    "dead_letter_offset group_id",
    "the handler gave up on a record, and the dead-letter topic acknowledged it; its offset "
    "is committed",
)
DEAD_LETTER_FAILED = _event(
    "record.dead_letter_failed",
    "error",
    "topic partition offset dead_letter_topic error retry_in_s group_id",
    "the dead-letter topic refused or missed a record: nothing past it is committed, and "
    "it is written again in retry_in_s",
)
OUTPUTS_UNACKNOWLEDGED = _event(
    "outputs.unacknowledged",
    "warning",
    "partitions error reason group_id",
    "the records the handler returned were not all acknowledged when partitions went "
    "(reason=revoked) or the consumer stopped (reason=stopping): their inputs' offsets are "
    "not committed, and are handled again by whoever owns them next",
)
OUTPUTS_FAILED = _event(
    "outputs.failed",
    "warning",
    "partitions error group_id",
    "the broker failed an output (an Event Hubs namespace that forgot the producer, say): "
    "the outputs' producer is replaced, and the records since the last commit are handled "
    "again, their outputs sent anew (in partition order; other orders stop the consumer, "
    "service.failed reason=output_failed)",
)
TRANSACTION_ABORTED = _event(
    "transaction.aborted",
    "warning",
    "partitions error group_id",
    "exactly once: a transaction could not commit (a member the group replaced is fenced "
    "here) and was aborted: its outputs are never visible at read_committed, and its "
    "records are handled again",
)
HANDLER_FAILED = _event(
    "handler.failed",
    "error",
    "topic partition offset attempts error exception group_id",
    "the handler gave up on a record and no dead-letter topic is set: the consumer commits "
    "what came before it and stops (service.failed reason=handler_failed, exit 1)",
)

# python -m consumer replay.
REPLAY_STARTED = _event(
    "replay.started",
    "info",
    "dead_letter_topic dead_letters",
    "a replay reads the dead-letter topic up to the dead_letters it holds now",
)
RECORD_REPLAYED = _event(
    "record.replayed",
    "info",
    "dead_letter_partition dead_letter_offset topic original_partition original_offset "
    "partition offset",
    "a dead letter written back to its original topic, acknowledged; partition and offset "
    "are where it was written",
)
RECORD_REPLAY_FAILED = _event(
    "record.replay_failed",
    "error",
    "dead_letter_partition dead_letter_offset topic error",
    "a dead letter its original topic did not take; counted as failed, the replay goes on",
)
REPLAY_FINISHED = _event(
    "replay.finished",
    "info",
    "read replayed skipped failed took_s",
    "every dead letter read is replayed, skipped by the filters, or failed; exit status 0 "
    "only when none failed",
)
GROUP_SESSION_EXPIRED = _event(
    "group.session_expired",
    "warning",
    "silent_s session_timeout_ms group_id",
    "no heartbeat answered for longer than the session timeout (a network cut): the group "
    "may have given our partitions away, so nothing more is handled until it answers or "
    "we have rejoined; once per silence",
)
GROUP_PROTOCOL_MISMATCH = _event(
    "group.protocol_mismatch",
    "error",
    "group_id assignors hint retry_in_s",
    "the group's members list none of our assignors",
)
CONSUMER_POLL_FAILED = _event(
    "consumer.poll_failed", "warning", "error retry_in_s group_id", "a poll failed; retried"
)
OFFSETS_COMMIT_FAILED = _event(
    "offsets.commit_failed",
    "warning",
    "partitions error",
    "a commit failed; its offsets go out with the next one",
)
BATCH_TRUNCATED = _event(
    "batch.truncated",
    "warning",
    "processed returned took_s max_poll_interval_ms max_records group_id",
    "a batch cut short to keep the group's poll interval; max_records is what later polls ask for",
)
WORKER_FAILED = _event(
    "worker.failed",
    "error",
    "topic partition offset exception group_id",
    "the consumer's own code failed around a record on a worker (not the handler): "
    "nothing past the record is committed, and the consumer stops",
)
RECORDS_ABANDONED = _event(
    "records.abandoned",
    "warning",
    "partitions drain_timeout_ms reason group_id",
    "records still running when partitions went (reason: revoked, stopping) and "
    "CONSUMER_DRAIN_TIMEOUT_MS had passed: not committed, handled again by the next owner",
)
CONSUMER_CLOSED = _event(
    "consumer.closed", "info", "took_s group_id", "committed, left the group and closed"
)

# Traces (docs/tracing.md).
TRACING_STARTED = _event(
    "tracing.started",
    "info",
    "exporters protocol endpoint sampler sampler_arg service_name",
    "OTEL_* switched tracing on; endpoint is where OTLP goes (null: the exporter's default)",
)
TRACING_SPANS_DROPPED = _event(
    "tracing.spans_dropped",
    "warning",
    "reason spans interval_s",
    "spans lost: export_failed (the backend did not take them), queue_full (more ended "
    "than could be sent) or stopped (still queued when the stop's bound ran out); at most "
    "once per interval_s per reason, spans counting every one since the last line",
)
TRACEPARENT_INVALID = _event(
    "traceparent.invalid",
    "warning",
    "topic partition offset invalid interval_s",
    "a record carried a traceparent header that cannot be read: ignored, the record handled "
    "like any other; at most once per interval_s, invalid counting every one since",
)
TRACING_STOPPED = _event(
    "tracing.stopped",
    "info",
    "took_s left",
    "the last spans flushed at stop, within a bound; left is how many were still queued",
)
