"""The little of Kafka's wire protocol the Event Hubs front reads and writes.

Requests and responses are decoded and encoded with kafka-python's classes,
which are generated from Kafka's own JSON schemas, so every version a client
may send is covered without a parser of ours. Only record batches are read by
hand: their header has a fixed layout (Kafka's ``DefaultRecordBatch``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kafka.protocol.consumer import FetchResponse, OffsetCommitRequest, OffsetCommitResponse
from kafka.protocol.metadata import FindCoordinatorRequest, FindCoordinatorResponse
from kafka.protocol.producer import ProduceRequest, ProduceResponse

PRODUCE = 0
FETCH = 1
OFFSET_COMMIT = 8
FIND_COORDINATOR = 10
SASL_HANDSHAKE = 17
API_VERSIONS = 18

#: Error codes the front answers with (Kafka's ``Errors``).
INVALID_REQUEST = 42
INVALID_PRODUCER_ID_MAPPING = 49
UNSUPPORTED_FOR_MESSAGE_FORMAT = 43
POLICY_VIOLATION = 44

_RESPONSES: dict[int, Any] = {
    PRODUCE: ProduceResponse,
    FETCH: FetchResponse,
    OFFSET_COMMIT: OffsetCommitResponse,
}
_HEADER = struct.Struct(">hhi")
# DefaultRecordBatch: baseOffset int64, batchLength int32, leaderEpoch int32,
# magic int8, crc int32, attributes int16, ... producerId int64 at byte 43, ...
# recordCount int32 at byte 57.
_BATCH_LENGTH = struct.Struct(">i")
_BATCH_OVERHEAD = 12
_MAGIC_AT = 16
_ATTRIBUTES = struct.Struct(">h")
_ATTRIBUTES_AT = 21
_COUNT = struct.Struct(">i")
_COUNT_AT = 57
_PRODUCER_ID = struct.Struct(">q")
_PRODUCER_ID_AT = 43
_COMPRESSION_BITS = 0x07


@dataclass(frozen=True)
class Header:
    api_key: int
    api_version: int
    correlation_id: int


def header(frame: bytes) -> Header:
    """The three fields every request starts with."""
    api_key, api_version, correlation_id = _HEADER.unpack_from(frame)
    return Header(api_key, api_version, correlation_id)


@dataclass(frozen=True)
class Batches:
    """What a produce request carries: records, bytes, and whether any batch is compressed."""

    records: int
    size: int
    compressed: bool
    #: The idempotent producers' ids the batches carry (-1, none, is left out).
    producer_ids: frozenset[int] = frozenset()


def _batches(records: bytes) -> Iterator[tuple[int, bool, int]]:
    pos = 0
    while pos + _COUNT_AT + _COUNT.size <= len(records):
        (length,) = _BATCH_LENGTH.unpack_from(records, pos + 8)
        if records[pos + _MAGIC_AT] < 2:
            # A legacy message set: count it as one record; its codec bits sit
            # elsewhere, and no client of ours writes it.
            yield 1, False, -1
        else:
            (attributes,) = _ATTRIBUTES.unpack_from(records, pos + _ATTRIBUTES_AT)
            (count,) = _COUNT.unpack_from(records, pos + _COUNT_AT)
            (producer_id,) = _PRODUCER_ID.unpack_from(records, pos + _PRODUCER_ID_AT)
            yield count, bool(attributes & _COMPRESSION_BITS), producer_id
        pos += _BATCH_OVERHEAD + length


@dataclass(frozen=True)
class Produce:
    request: Any
    batches: Batches

    @property
    def acks(self) -> int:
        return int(self.request.acks)

    @property
    def timeout_ms(self) -> int:
        return int(self.request.timeout_ms)


def produce(frame: bytes, version: int) -> Produce:
    request = ProduceRequest.decode(frame, version=version, header=True)
    records = size = 0
    compressed = False
    producer_ids: set[int] = set()
    for topic in request.topic_data:
        for partition in topic.partition_data:
            data = bytes(partition.records or b"")
            size += len(data)
            for count, packed, producer_id in _batches(data):
                records += count
                compressed = compressed or packed
                if producer_id >= 0:
                    producer_ids.add(producer_id)
    return Produce(request, Batches(records, size, compressed, frozenset(producer_ids)))


def produce_error(request: Produce, version: int, correlation_id: int, error: int) -> bytes:
    """A framed produce response that gives *error* for every partition of *request*."""
    topics = []
    for topic in request.request.topic_data:
        partitions = [
            ProduceResponse.TopicProduceResponse.PartitionProduceResponse(
                index=partition.index, error_code=error, base_offset=-1
            )
            for partition in topic.partition_data
        ]
        key = {"topic_id": topic.topic_id} if version >= 13 else {"name": topic.name}
        topics.append(ProduceResponse.TopicProduceResponse(**key, partition_responses=partitions))
    response = ProduceResponse(responses=topics, throttle_time_ms=0)
    response.API_VERSION = version
    response.with_header(correlation_id=correlation_id)
    return bytes(response.encode(header=True, framed=True))


def committed_partitions(frame: bytes, version: int) -> list[tuple[str, str, int]]:
    """(group, topic, partition) of every offset an OffsetCommit request commits."""
    request = OffsetCommitRequest.decode(frame, version=version, header=True)
    return [
        (request.group_id, str(topic.topic_id if version >= 10 else topic.name), p.partition_index)
        for topic in request.topics
        for p in topic.partitions
    ]


def with_throttle(response: bytes, api_key: int, version: int, throttle_ms: int) -> bytes:
    """*response* (unframed) with its ``throttle_time_ms`` set, framed again."""
    kind = _RESPONSES[api_key]
    decoded = kind.decode(response, version=version, header=True)
    correlation_id = decoded.header.correlation_id
    decoded.throttle_time_ms = throttle_ms
    # The version setter writes into a request header; a response has none of that.
    decoded._header = None
    decoded.API_VERSION = version
    decoded.with_header(correlation_id=correlation_id)
    return bytes(decoded.encode(header=True, framed=True))


def has_throttle(api_key: int, version: int) -> bool:
    """Whether this response carries ``throttle_time_ms`` the front may set."""
    if api_key not in _RESPONSES:
        return False
    return not (api_key in (PRODUCE, FETCH) and version < 1) and not (
        api_key == OFFSET_COMMIT and version < 3
    )


#: FindCoordinator's ``key_type`` for a transaction coordinator (0 is a group's).
TRANSACTION_COORDINATOR = 1


def coordinator_request(frame: bytes, version: int) -> tuple[int, list[str]]:
    """A FindCoordinator request's key type and keys (one before v4, any number after)."""
    request = FindCoordinatorRequest.decode(frame, version=version, header=True)
    keys = list(request.coordinator_keys) if version >= 4 else [request.key]
    return request.key_type if version >= 1 else 0, keys


def coordinator_error(
    keys: list[str], version: int, correlation_id: int, error: int, message: str
) -> bytes:
    """A framed FindCoordinator response that refuses every one of *keys* with *error*."""
    if version >= 4:
        response = FindCoordinatorResponse(
            throttle_time_ms=0,
            coordinators=[
                FindCoordinatorResponse.Coordinator(
                    key=key, node_id=-1, host="", port=-1, error_code=error,
                    error_message=message,
                )
                for key in keys
            ],
        )  # fmt: skip
    else:
        response = FindCoordinatorResponse(
            throttle_time_ms=0, error_code=error, error_message=message, node_id=-1, host="",
            port=-1,
        )  # fmt: skip
    response.API_VERSION = version
    response.with_header(correlation_id=correlation_id)
    return bytes(response.encode(header=True, framed=True))
