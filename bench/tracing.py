"""What tracing costs: our producer and consumer at full speed with it off, on at 100 %
sampling, and on at ``parentbased_traceidratio`` 0.01, sending to a real Jaeger.

The consumer reads a topic Kafka's Java producer filled (no ``traceparent``:
every record starts a trace, sampled at the root's rate); the producer sends
numbered envelopes of 100 B at rate 0. Each run also says how many spans
reached Jaeger and how many were dropped, since at these rates the SDK's
default queue (2,048 spans, sent every 5 s) cannot hold them all.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

from bench.runs import fresh_topic, rate_from_samples
from bench.stats import alternate, summary
from bench.throughput import LOG_EVERY, MESSAGES, WARMUP_FRACTION, prefill
from harness import ServiceGroup, service_env
from harness.jaeger import Jaeger

#: The contenders: OTEL_* settings added to the service's environment.
MODES: dict[str, dict[str, str]] = {
    "off": {},
    "on_100": {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
    "on_1": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"},
}
CONSUMER_RECORDS = 400_000


def _run(
    bootstrap: str,
    jaeger: Jaeger,
    module: str,
    topic: str,
    *,
    total: int,
    mode: str,
    **settings: str,
) -> dict[str, float]:
    tracing = jaeger.env(**MODES[mode]) if mode != "off" else {}
    group = ServiceGroup(
        service_env(
            bootstrap, KAFKA_TOPIC=topic, LOG_MESSAGE_EVERY=str(LOG_EVERY), **settings, **tracing
        )
    )
    service = group.start(module)
    event = "message.sent" if module == "producer" else "message.received"
    wanted = total // LOG_EVERY
    try:
        group.wait_until(lambda: len(service.events(event)) >= wanted, 600)
        spans = {
            "exported": service.metric("tracing_spans_exported_total"),
            "dropped": service.metric("tracing_spans_dropped_total"),
        }
    finally:
        service.stop()
    done, seconds = rate_from_samples(
        service.events(event)[:wanted], LOG_EVERY, int(total * WARMUP_FRACTION) // LOG_EVERY
    )
    return {"messages_per_s": done / seconds, **spans}


def tracing_case(bootstrap: str, rounds: int, scale: float = 1.0) -> dict[str, Any]:
    """Producer and consumer messages/s per tracing mode, alternated round by round."""
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-jaeger-") as tmp:
        jaeger = Jaeger(Path(tmp))
        jaeger.start()
        try:
            sends = int(MESSAGES["ours"][100] * scale)
            runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
            for _, mode in alternate(list(MODES), rounds):
                with fresh_topic(bootstrap, f"trace-{mode}") as topic:
                    settings = {"PRODUCER_RATE": "0", "PRODUCER_MESSAGE_SIZE": "100"}
                    run = _run(
                        bootstrap, jaeger, "producer", topic, total=sends, mode=mode, **settings
                    )
                    runs[mode].append(run)
            result["producer"] = _summaries(runs)
            records = int(CONSUMER_RECORDS * scale)
            runs = {mode: [] for mode in MODES}
            with fresh_topic(bootstrap, "trace-consume") as topic:
                prefill(bootstrap, topic, records)
                for _, mode in alternate(list(MODES), rounds):
                    settings = {
                        "KAFKA_GROUP_ID": f"{mode}-{uuid.uuid4().hex[:8]}",
                        "KAFKA_AUTO_OFFSET_RESET": "earliest",
                    }
                    run = _run(
                        bootstrap, jaeger, "consumer", topic, total=records, mode=mode, **settings
                    )
                    runs[mode].append(run)
            result["consumer"] = _summaries(runs)
        finally:
            jaeger.stop()
    return result


def _summaries(runs: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for mode, measured in runs.items():
        found[mode] = {name: summary((r[name] for r in measured), 0) for name in measured[0]} | {
            "runs": measured
        }
    off = found["off"]["messages_per_s"]["median"]
    for mode in MODES:
        rate = found[mode]["messages_per_s"]["median"]
        found[mode]["vs_off"] = round(rate / off, 3)
        # The span's cost per record: the time per record beyond tracing off's.
        found[mode]["us_per_record_over_off"] = round(1e6 / rate - 1e6 / off, 2)
    return found
