"""What our producer writes, our consumer reads back; anything else is refused with a reason.

The consumer decodes every message it is handed, from any producer, so the
decoder must answer any bytes with an envelope or ``InvalidMessage``, never
another exception: that would end the service on one hostile record.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common import message

pytestmark = pytest.mark.faults

PRODUCERS = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
TIMES = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9998, 1, 1), timezones=st.just(UTC)
)
#: JSON has no NaN or infinity: json.dumps would write them as words no JSON parser reads.
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(PRODUCERS, st.integers(min_value=0, max_value=2**63), TIMES, st.integers(0, 5000))
def test_what_the_producer_encodes_decodes_to_the_same_envelope(
    producer: str, seq: int, sent_at: datetime, size: int
) -> None:
    key, value = message.encode(producer, seq, message.stamp(sent_at), size)
    assert message.decode(value) == message.Envelope(producer, seq, sent_at)
    assert json.loads(value)["seq"] == seq
    # Padded to the size asked when the padding field fits in it.
    unpadded = len(message.encode(producer, seq, message.stamp(sent_at), 0)[1])
    pad_field = len(b',"pad":""')
    if size >= unpadded + pad_field:
        assert len(value) == size
    elif size > unpadded:
        assert len(value) == unpadded + pad_field
    else:
        assert len(value) == unpadded
    assert (
        key == f"key-{sent_at.isoformat(timespec='microseconds').replace('+00:00', 'Z')}".encode()
    )


@given(st.integers(min_value=0, max_value=2**62))
def test_the_clock_writes_the_same_stamp_as_the_datetime_it_reads(ns: int) -> None:
    # The producer stamps each message with Clock; it must agree with stamp(datetime).
    sent_at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)
    clock = message.Clock(lambda: ns)
    assert clock.stamp() == message.stamp(sent_at)
    assert clock.stamp() == message.stamp(sent_at)  # from its cached date part


@given(st.binary(max_size=300))
def test_any_bytes_decode_or_are_refused_with_a_reason(value: bytes) -> None:
    try:
        message.decode(value)
    except message.InvalidMessage as exc:
        reason = exc.reason
    else:
        reason = "decoded"
    assert reason in {"decoded", "not_utf8", "not_json", "not_envelope"}


ENVELOPES = st.builds(
    lambda producer, seq, sent_at: message.encode(producer, seq, message.stamp(sent_at), 0)[1],
    PRODUCERS,
    st.integers(min_value=0, max_value=2**63),
    TIMES,
)


@given(
    st.none()
    | st.binary(max_size=300)
    | ENVELOPES
    # A timestamp without its Z, taken as UTC.
    | ENVELOPES.map(lambda value: value.replace(b'Z"', b'"', 1))
)
def test_the_consumers_quick_look_agrees_with_decode(value: bytes | None) -> None:
    """envelope_of, once per consumed record, is decode without the reasons."""
    try:
        decoded: message.Envelope | None = message.decode(value)
    except message.InvalidMessage:
        decoded = None
    assert message.envelope_of(value) == decoded


@given(JSON_VALUES)
def test_any_json_decodes_or_is_refused_as_not_an_envelope(body: object) -> None:
    with pytest.raises(message.InvalidMessage, match="not_envelope"):
        message.decode(json.dumps(body).encode())


ENVELOPE = b'{"producer":"p","seq":1,"ts":"2026-11-25T08:00:00Z"'


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "tombstone"),
        (b"", "not_json"),
        (b"\x00" * 100, "not_json"),
        (b"\xff\xfe\x00binary", "not_utf8"),
        (b'{"producer":"\xff","seq":1,"ts":"2026-11-25T08:00:00Z"}', "not_utf8"),
        (ENVELOPE + b"} trailing", "not_json"),
        # Deeper than the decoder follows, in a field it would skip anyway.
        (ENVELOPE + b',"deep":' + b"[" * 100_000 + b"}", "not_json"),
        (b"[1, 2, 3]", "not_envelope"),
        (b'{"hello": "world"}', "not_envelope"),
        (b'{"producer":"p","seq":true,"ts":"2026-11-25T08:00:00Z"}', "not_envelope"),
        (b'{"producer":"p","seq":1.0,"ts":"2026-11-25T08:00:00Z"}', "not_envelope"),
        (b'{"producer":"p","seq":"1","ts":"2026-11-25T08:00:00Z"}', "not_envelope"),
        (b'{"producer":"p","seq":1,"ts":"yesterday"}', "not_envelope"),
        (b'{"producer":1,"seq":1,"ts":"2026-11-25T08:00:00Z"}', "not_envelope"),
    ],
)
def test_invalid_values_are_refused_with_their_reason(value: bytes | None, reason: str) -> None:
    with pytest.raises(message.InvalidMessage) as refused:
        message.decode(value)
    assert refused.value.reason == reason


def test_timestamps_keep_their_offset_and_a_missing_one_means_utc() -> None:
    plus_two = message.decode(b'{"producer":"p","seq":1,"ts":"2026-11-25T10:00:00+02:00"}')
    assert plus_two.sent_at == datetime(2026, 11, 25, 10, tzinfo=timezone(timedelta(hours=2)))
    naive = message.decode(b'{"producer":"p","seq":1,"ts":"2026-11-25T08:00:00"}')
    assert naive.sent_at == datetime(2026, 11, 25, 8, tzinfo=UTC)
    # Fields we do not read may hold anything, as other producers' extras do.
    extra = message.decode(ENVELOPE + b',"value":{"nested":[1,2]},"pad":"xx"}')
    assert extra == message.Envelope("p", 1, datetime(2026, 11, 25, 8, tzinfo=UTC))
