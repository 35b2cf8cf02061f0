"""The HTTP endpoint answers many concurrent scrapes and refuses garbage cleanly,
while the service goes on consuming."""

from __future__ import annotations

import re
import socket
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import Services, eventhubs_env, seqs

pytestmark = pytest.mark.faults

REFUSAL = re.compile(rb"HTTP/1\.[01] [45]\d\d ")
ERROR_PAGE = re.compile(rb"Error code: [45]\d\d")
GARBAGE = [
    b"\x00\xff\xfe binary noise\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET /metrics HTTP/9.9\r\n\r\n",
    b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nX-Big: " + b"b" * 70_000 + b"\r\n\r\n",
    b"BREW /coffee HTTP/1.1\r\nHost: x\r\n\r\n",
]
#: Odd but answerable: served normally.
ODD = [
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"GET /healthz?x=%ff%00 HTTP/1.0\r\n\r\n",
]


def _raw(port: int, payload: bytes) -> bytes:
    """Send *payload*, return whatever comes back before the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        try:
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            return b""  # the server closed on us first: a clean refusal too
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_scrapes_and_garbage_do_not_disturb_consuming(
    services: Services, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=2)
    env = eventhubs_env(services.kafka, topic, f"g-{topic}")
    consumer = services.start("consumer", clean_env=True, **env)
    producer = services.start("producer", clean_env=True, PRODUCER_RATE="100", **env)
    services.wait_until(lambda: seqs(consumer, "message.received"), what="consuming")
    port = consumer.metrics_port

    # A client that connects and says nothing must not hold up the others.
    with socket.create_connection(("127.0.0.1", port), timeout=10):

        def scrape(_: int) -> tuple[int, bool]:
            url = f"http://127.0.0.1:{port}/metrics"
            with urllib.request.urlopen(url, timeout=30) as response:
                body = response.read()
            return response.status, b"messaging_client_consumed_messages_total" in body

        with ThreadPoolExecutor(max_workers=20) as pool:
            results = list(pool.map(scrape, range(400)))
        assert results == [(200, True)] * 400

        for payload in GARBAGE:
            answer = _raw(port, payload)
            # Refused: closed, a 4xx/5xx status line, or (when the request line
            # names no usable HTTP version) the bare error page.
            refused = answer == b"" or REFUSAL.match(answer) or ERROR_PAGE.search(answer)
            assert refused, (payload[:40], answer[:100])
        for payload in ODD:
            assert _raw(port, payload).startswith(b"HTTP/1.0 200"), payload
        assert consumer.get("/nowhere")[0] == 404
        request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 405

    before = len(seqs(consumer, "message.received"))
    services.wait_until(
        lambda: len(seqs(consumer, "message.received")) >= before + 100,
        what="consuming on after the load",
    )
    assert consumer.get("/healthz")[0] == 200
    assert consumer.get("/readyz")[0] == 200
    assert producer.stop() == 0
    assert consumer.stop() == 0
    assert "Traceback" not in consumer.output()
