"""An Event Hubs front: TLS before the broker's SASL listener, adding what Event Hubs adds.

Every byte still goes to the real broker, which does all the Kafka work; the
front only adds the behaviour ``eventhubs-facts.md`` documents for the Kafka
endpoint of Azure Event Hubs:

- a connection that opens with ApiVersions v4 or later is reset (Event Hubs,
  April to September 2025; kafka-python#2602, franz-go#1022);
- a compressed produce batch is refused on a Standard namespace with "The
  message format version on the broker does not support the request";
- offset commits over 4 per second per partition are held back;
- over the throughput quota, answers are delayed and carry ``throttle_time_ms``,
  and a produce that would wait past its request timeout gets PolicyViolation;
- an idle connection is closed, as Azure's load balancer does after ~240 s;
- on a Standard namespace, a transaction's coordinator is refused (transactions are a
  preview of Premium and Dedicated);
- when told, idempotent producers seen so far are forgotten: every later produce of
  theirs is refused with INVALID_PRODUCER_ID_MAPPING, as Azure/azure-event-hubs-for-kafka#261
  reports after timeouts.

The rules live in ``front.json`` in the broker's data directory and are read
again for each new connection, so a test can change them on a running broker.
What happened is written as JSON lines to ``front.log`` beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import json
import ssl
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from localkafka import wire
from localkafka.errors import LocalKafkaError

RULES_FILE = "front.json"
LOG_FILE = "front.log"
Tier = Literal["standard", "premium", "dedicated"]
_FRAME = struct.Struct(">i")
_MAX_FRAME = 100 * 1024 * 1024


@dataclass(frozen=True)
class Rules:
    """How the front behaves; the defaults are a Standard namespace as reported in 2025."""

    #: ApiVersions requests at or above this version reset the connection; None: none do.
    drop_api_versions_from: int | None = 4
    #: Compressed batches pass only on Premium and Dedicated.
    tier: Tier = "standard"
    #: Offset commits per second per partition before commits are held back.
    commits_per_second: float = 4.0
    #: Produce quota in records per second (a Standard throughput unit: 1000); None: none.
    ingress_records_per_second: float | None = None
    #: Fetch quota in bytes per second (a Standard throughput unit: 2 MB); None: none.
    egress_bytes_per_second: float | None = None
    #: A connection that sends nothing for this long is closed (Azure: about 240 s).
    idle_close_seconds: float = 240.0
    #: Idempotent producers first seen before this time (seconds since the epoch) are
    #: forgotten: each produce of theirs gets INVALID_PRODUCER_ID_MAPPING, for good
    #: (Azure/azure-event-hubs-for-kafka#261); None: none are.
    forget_producers_before: float | None = None

    @classmethod
    def load(cls, data_dir: Path) -> Rules:
        path = data_dir / RULES_FILE
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            return cls()
        except (ValueError, TypeError) as exc:
            raise LocalKafkaError(f"{path} holds no valid rules: {exc}") from None

    def save(self, data_dir: Path) -> None:
        path = data_dir / RULES_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")
        tmp.replace(path)


def configure(data_dir: Path, **changes: object) -> Rules:
    """Change the front's rules for new connections; returns the rules now in force."""
    rules = dataclasses.replace(Rules.load(data_dir), **changes)  # type: ignore[arg-type]
    rules.save(data_dir)
    return rules


def read_log(data_dir: Path) -> list[dict[str, object]]:
    """What the front did so far, one dict per event."""
    try:
        text = (data_dir / LOG_FILE).read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class _Rate:
    """A leaky bucket: how long the next *amount* must wait to keep to *per_second*."""

    def __init__(self, per_second: float) -> None:
        self._per_second = per_second
        self._free_at = time.monotonic()

    def delay(self, amount: float) -> float:
        """How long *amount* would wait now; nothing is taken."""
        now = time.monotonic()
        # One second of quota may be used at once, as a throughput unit allows.
        return max(0.0, self._free_after(amount, now) - now - 1.0)

    def take(self, amount: float) -> None:
        self._free_at = self._free_after(amount, time.monotonic())

    def _free_after(self, amount: float, now: float) -> float:
        return max(self._free_at, now) + amount / self._per_second


class _Commits:
    """Commit times per (group, topic, partition) over the last second."""

    def __init__(self, per_second: float) -> None:
        self._limit = max(1, int(per_second))
        self._times: dict[tuple[str, str, int], collections.deque[float]] = collections.defaultdict(
            collections.deque
        )

    def delay(self, partitions: list[tuple[str, str, int]]) -> float:
        now = time.monotonic()
        wait = 0.0
        for key in partitions:
            times = self._times[key]
            while times and times[0] <= now - 1.0:
                times.popleft()
            if len(times) >= self._limit:
                wait = max(wait, times[-self._limit] + 1.0 - now)
        for key in partitions:
            self._times[key].append(now + wait)
        return wait


class Front:
    """One namespace: its rules, its quotas, its log."""

    def __init__(self, data_dir: Path, inner: tuple[str, int]) -> None:
        self.data_dir = data_dir
        self.inner = inner
        self._log = (data_dir / LOG_FILE).open("a", buffering=1)
        self._mtime = -1.0
        self.rules = Rules()
        #: When each idempotent producer id was first seen, across connections.
        self.producers_seen: dict[int, float] = {}
        self.reload()

    def reload(self) -> None:
        """Read the rules again if the file changed."""
        try:
            mtime = (self.data_dir / RULES_FILE).stat().st_mtime
        except FileNotFoundError:
            mtime = 0.0
        if mtime == self._mtime:
            return
        self._mtime = mtime
        try:
            self.rules = Rules.load(self.data_dir)
        except LocalKafkaError as exc:
            # A hand-edited file gone wrong: keep the rules in force, and say why.
            self.log("front.rules_invalid", error=str(exc))
            return
        self.commits = _Commits(self.rules.commits_per_second)
        rules = self.rules
        self.ingress = (
            _Rate(rules.ingress_records_per_second) if rules.ingress_records_per_second else None
        )
        self.egress = (
            _Rate(rules.egress_bytes_per_second) if rules.egress_bytes_per_second else None
        )
        self.log("front.rules_loaded", **dataclasses.asdict(rules))

    def log(self, event: str, **fields: object) -> None:
        self._log.write(json.dumps({"event": event, "t": time.time(), **fields}) + "\n")

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reload()
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.inner)
        except OSError as exc:
            self.log("front.broker_unreachable", error=str(exc))
            writer.transport.abort()
            return
        await _Connection(self, reader, writer, upstream_reader, upstream_writer).run()


@dataclass
class _Answer:
    """One answer the client waits for, in request order."""

    api_key: int = -1
    api_version: int = 0
    #: Bytes the front answers itself; None: the broker's next frame.
    local: bytes | None = None
    #: How long to hold the broker's answer back, and report as throttle time.
    delay: float = 0.0
    #: A produce with acks=0 gets no answer at all.
    expected: bool = True


class _Connection:
    def __init__(
        self,
        front: Front,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream_reader: asyncio.StreamReader,
        upstream_writer: asyncio.StreamWriter,
    ) -> None:
        self.front = front
        self.rules = front.rules
        self.reader, self.writer = reader, writer
        self.up_reader, self.up_writer = upstream_reader, upstream_writer
        self.answers: asyncio.Queue[_Answer | None] = asyncio.Queue()
        # After a SaslHandshake v0 the client sends its SASL token as a bare frame.
        self.raw_next = False

    async def run(self) -> None:
        forward = asyncio.create_task(self._requests())
        back = asyncio.create_task(self._responses())
        try:
            done, _ = await asyncio.wait((forward, back), return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled() and (error := task.exception()) is not None:
                    # A bug of the front's, not a behaviour of Event Hubs: say so.
                    self.front.log("front.failed", error=repr(error))
        finally:
            for task in (forward, back):
                task.cancel()
            for writer in (self.writer, self.up_writer):
                writer.transport.abort()

    async def _requests(self) -> None:
        rules = self.rules
        while True:
            try:
                frame = await asyncio.wait_for(_read_frame(self.reader), rules.idle_close_seconds)
            except TimeoutError:
                self.front.log("front.idle_closed", seconds=rules.idle_close_seconds)
                return
            if frame is None:
                return
            if self.raw_next:
                self.raw_next = False
                await self._forward(frame, _Answer())
                continue
            head = wire.header(frame)
            try:
                answer = self._decide(head, frame)
            except (ValueError, IndexError, struct.error) as exc:
                # A version kafka-python's schemas do not know: pass it on as it is.
                self.front.log(
                    "front.undecoded",
                    api_key=head.api_key,
                    version=head.api_version,
                    error=str(exc),
                )
                answer = _Answer(head.api_key, head.api_version)
            if answer is None:
                return
            if answer.local is not None:
                # A produce with acks=0 is refused without a word, as it is sent.
                if answer.expected:
                    await self.answers.put(answer)
            elif not answer.expected:
                await self._send_up(frame)
            else:
                await self._forward(frame, answer)

    def _decide(self, head: wire.Header, frame: bytes) -> _Answer | None:
        """What to do with one request: forward it (maybe held back), answer it, or reset."""
        rules, front = self.rules, self.front
        answer = _Answer(head.api_key, head.api_version)
        if head.api_key == wire.API_VERSIONS:
            limit = rules.drop_api_versions_from
            if limit is not None and head.api_version >= limit:
                front.log("front.api_versions_dropped", version=head.api_version)
                return None
        elif head.api_key == wire.SASL_HANDSHAKE:
            self.raw_next = head.api_version == 0
        elif head.api_key == wire.PRODUCE:
            self._decide_produce(head, frame, answer)
        elif head.api_key == wire.FIND_COORDINATOR and rules.tier == "standard":
            key_type, keys = wire.coordinator_request(frame, head.api_version)
            if key_type == wire.TRANSACTION_COORDINATOR:
                # Transactions are a preview of Premium and Dedicated: Standard refuses
                # the first step of every one, in these words (zeebe-kafka-exporter#390).
                front.log("front.transactions_refused", keys=keys)
                answer.local = wire.coordinator_error(
                    keys,
                    head.api_version,
                    head.correlation_id,
                    wire.INVALID_REQUEST,
                    "FindCoordinator asked for coordinator with type code 1 which is not "
                    "supported. type code 1 is only supported in Premium or Dedicated sku.",
                )
        elif head.api_key == wire.OFFSET_COMMIT:
            partitions = wire.committed_partitions(frame, head.api_version)
            answer.delay = front.commits.delay(partitions)
            front.log(
                "front.offsets_committed",
                partitions=[f"{group}/{topic}/{index}" for group, topic, index in partitions],
                held_ms=round(answer.delay * 1000),
            )
        return answer

    def _decide_produce(self, head: wire.Header, frame: bytes, answer: _Answer) -> None:
        """A produce: refused for a forgotten producer or a compressed batch on Standard,
        held back over the quota, or passed on."""
        rules, front = self.rules, self.front
        request = wire.produce(frame, head.api_version)
        answer.expected = request.acks != 0
        for producer_id in request.batches.producer_ids:
            front.producers_seen.setdefault(producer_id, time.time())
        # Unlike the other rules, this one reaches connections already open: Azure
        # forgets a producer whatever connection it sends on.
        front.reload()
        before = front.rules.forget_producers_before
        forgotten = sorted(
            producer_id
            for producer_id in request.batches.producer_ids
            if before is not None and front.producers_seen[producer_id] < before
        )
        if forgotten:
            front.log("front.producer_forgotten", producer_ids=forgotten)
            answer.local = wire.produce_error(
                request,
                head.api_version,
                head.correlation_id,
                wire.INVALID_PRODUCER_ID_MAPPING,
            )
        elif request.batches.compressed and rules.tier == "standard":
            front.log("front.compressed_refused", records=request.batches.records)
            answer.local = wire.produce_error(
                request,
                head.api_version,
                head.correlation_id,
                wire.UNSUPPORTED_FOR_MESSAGE_FORMAT,
            )
        elif front.ingress is not None:
            delay = front.ingress.delay(request.batches.records)
            if delay * 1000 > request.timeout_ms:
                front.log(
                    "front.produce_refused",
                    delay_ms=round(delay * 1000),
                    records=request.batches.records,
                )
                answer.local = wire.produce_error(
                    request, head.api_version, head.correlation_id, wire.POLICY_VIOLATION
                )
            else:
                front.ingress.take(request.batches.records)
                answer.delay = delay
                if delay:
                    front.log("front.produce_throttled", delay_ms=round(delay * 1000))

    async def _forward(self, frame: bytes, answer: _Answer) -> None:
        await self.answers.put(answer)
        await self._send_up(frame)

    async def _send_up(self, frame: bytes) -> None:
        self.up_writer.write(_FRAME.pack(len(frame)) + frame)
        await self.up_writer.drain()

    async def _responses(self) -> None:
        while (answer := await self.answers.get()) is not None:
            if answer.local is not None:
                data = answer.local
            else:
                frame = await _read_frame(self.up_reader)
                if frame is None:
                    return
                data = await self._held_back(answer, frame)
            self.writer.write(data)
            await self.writer.drain()

    async def _held_back(self, answer: _Answer, frame: bytes) -> bytes:
        delay = answer.delay
        if answer.api_key == wire.FETCH and (egress := self.front.egress) is not None:
            delay = max(delay, egress.delay(len(frame)))
            egress.take(len(frame))
            if delay:
                self.front.log("front.fetch_throttled", delay_ms=round(delay * 1000))
        if not delay:
            return _FRAME.pack(len(frame)) + frame
        # Later answers wait too: Kafka answers a connection's requests in order.
        await asyncio.sleep(delay)
        if wire.has_throttle(answer.api_key, answer.api_version):
            return wire.with_throttle(
                frame, answer.api_key, answer.api_version, round(delay * 1000)
            )
        return _FRAME.pack(len(frame)) + frame


async def _read_frame(reader: asyncio.StreamReader) -> bytes | None:
    try:
        (size,) = _FRAME.unpack(await reader.readexactly(_FRAME.size))
        if not 0 <= size <= _MAX_FRAME:
            return None
        return await reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


async def _main(data_dir: Path, port: int, inner_port: int, host: str) -> None:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(data_dir / "tls" / "server.pem")
    front = Front(data_dir, (host, inner_port))
    server = await asyncio.start_server(front.serve, host, port, ssl=tls, reuse_address=True)
    front.log("front.started", port=port, inner_port=inner_port)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localkafka.front", description=__doc__)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("port", type=int)
    parser.add_argument("inner_port", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.data_dir, args.port, args.inner_port, args.host))
    return 0


if __name__ == "__main__":
    sys.exit(main())
