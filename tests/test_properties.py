"""Property-based: the connection-string parser and the settings validator, on any input,
answer with a result or their one error type, and never quote the key back."""

from __future__ import annotations

import base64
import contextlib
import os
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.config import (
    ConfigError,
    ConsumerSettings,
    ProducerSettings,
    env_variables,
    load,
    resolve,
)
from common.eventhubs import ConnectionStringError, parse_connection_string

pytestmark = pytest.mark.faults

# What the environment can hold: no NUL, no lone surrogates.
ENV_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=60
)
LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
# As the portal makes them: 32 random bytes in base64.
KEY = st.binary(min_size=32, max_size=32).map(lambda raw: base64.b64encode(raw).decode())
BLANK = st.sampled_from(["", " ", "  ", "\t"])


@st.composite
def portal_strings(draw: st.DrawFn) -> tuple[str, str, str, str | None]:
    """(pasted text, namespace, key, entity path) as people copy them from the portal."""
    namespace = draw(LABEL)
    key = draw(KEY)
    entity = draw(st.none() | st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True))
    slash = draw(st.sampled_from(["/", ""]))
    parts = [
        ("Endpoint", f"sb://{namespace}.servicebus.windows.net{slash}"),
        ("SharedAccessKeyName", draw(st.sampled_from(["RootManageSharedAccessKey", "send"]))),
        ("SharedAccessKey", key),
    ]
    if entity is not None:
        parts.append(("EntityPath", entity))
    parts = draw(st.permutations(parts))
    case = draw(st.sampled_from([str, str.lower, str.upper]))
    pieces = [
        f"{draw(BLANK)}{case(name)}{draw(BLANK)}={value}{draw(BLANK)}" for name, value in parts
    ]
    text = ";".join(pieces) + draw(st.sampled_from(["", ";", "; "]))
    quote = draw(st.sampled_from(["", '"', "'"]))
    return f"{draw(BLANK)}{quote}{text}{quote}{draw(BLANK)}\n", namespace, key, entity


@given(portal_strings())
def test_any_pasted_connection_string_parses(case: tuple[str, str, str, str | None]) -> None:
    text, namespace, key, entity = case

    parsed = parse_connection_string(text)

    assert parsed.host == f"{namespace}.servicebus.windows.net"
    assert parsed.bootstrap_servers == f"{namespace}.servicebus.windows.net:9093"
    assert parsed.entity_path == entity
    assert key in parsed.raw
    assert key not in repr(parsed)


@given(portal_strings(), st.integers(0, 200), st.integers(0, 200))
def test_any_damaged_connection_string_fails_without_quoting_the_key(
    case: tuple[str, str, str, str | None], start: int, length: int
) -> None:
    text, _, key, _ = case
    damaged = text[:start] + text[start + length :]

    try:
        parsed = parse_connection_string(damaged)
    except ConnectionStringError as error:
        said = str(error)
    else:
        said = repr(parsed)
    for piece in (key, key[:12], key[-12:]):
        assert piece not in said


@given(ENV_TEXT)
def test_any_text_parses_or_fails_cleanly(text: str) -> None:
    with contextlib.suppress(ConnectionStringError):
        parse_connection_string(text)


VARIABLES = sorted(set(env_variables(ConsumerSettings)) | set(env_variables(ProducerSettings)))
SECRET = "Zm9yLXRoZS1wcm9wZXJ0eS10ZXN0cy1vbmx5LTk4NzY="


@st.composite
def environments(draw: st.DrawFn) -> dict[str, str]:
    """Any subset of our variables, with any text, the key planted in the secrets."""
    chosen = draw(st.lists(st.sampled_from(VARIABLES), unique=True, max_size=12))
    env = {name: draw(ENV_TEXT) for name in chosen}
    if draw(st.booleans()):
        env["EVENTHUBS_CONNECTION_STRING"] = draw(
            st.sampled_from(
                [
                    "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;"
                    f"SharedAccessKey={SECRET}",
                    f"SharedAccessKey={SECRET}",
                    f"Endpoint=sb://ns/;{SECRET}",
                ]
            )
        )
    if draw(st.booleans()):
        env["KAFKA_SASL_PASSWORD"] = SECRET
    return env


@settings(max_examples=300, deadline=None)
@given(environments(), st.sampled_from([ConsumerSettings, ProducerSettings]))
def test_any_environment_loads_or_fails_with_one_clear_error(
    env: dict[str, str], model: type[ConsumerSettings] | type[ProducerSettings]
) -> None:
    clean = {name: value for name, value in os.environ.items() if name not in VARIABLES}
    with mock.patch.dict(os.environ, {**clean, **env}, clear=True):
        try:
            said = repr(resolve(load(model)))
        except ConfigError as error:
            said = str(error)
            problems = error.problems
        else:
            problems = ["(loaded)"]
    assert problems
    assert SECRET not in said
    assert SECRET[:12] not in said
