"""Signing in to Event Hubs with Microsoft Entra ID: tokens from azure-identity's real code,
checked by Kafka's own JWT validator (signature, audience, issuer, expiry), re-authenticated
as they expire; every failure one clear line, and no token in any log."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from azure.identity import CredentialUnavailableError

import localkafka
from common.entra import EntraTokens
from common.failure import ServiceFailed
from harness import ServiceProcess, entra_env
from tests.conftest import Services, seqs
from tests.entra import TokenService

#: The broker ends a session this long after sign-in unless the client signs in
#: again with a fresh token (KIP-368): short, so that it happens during a test.
REAUTH_MS = 5_000
#: Token lifetime in the long test: several expiries in one run.
LIFETIME_S = 15


@pytest.fixture(scope="module")
def oauth_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[localkafka.Broker]:
    """A broker of these tests' own, its OAUTHBEARER sessions short."""
    data_dir = tmp_path_factory.mktemp("oauth-broker")
    try:
        broker = localkafka.start(data_dir, reauth_ms=REAUTH_MS, bind_to_parent=True)
    except localkafka.LocalKafkaError as exc:
        pytest.fail(f"the Kafka broker could not start: {exc}", pytrace=False)
    try:
        yield broker
    finally:
        localkafka.stop(data_dir)


@pytest.fixture
def tokens(oauth_broker: localkafka.Broker, services: Services) -> Iterator[TokenService]:
    """Entra ID on loopback; every token it issues is a secret no output may show."""
    assert oauth_broker.jwt_signing_key is not None
    service = TokenService(oauth_broker.jwt_signing_key)
    service.start()
    try:
        yield service
    finally:
        service.stop()
        services.secrets |= set(service.issued)


@pytest.fixture
def signed_in(
    oauth_broker: localkafka.Broker, services: Services, tokens: TokenService
) -> Callable[..., ServiceProcess]:
    """Start a service that signs in with Entra ID to a fresh topic's namespace."""

    def start(module: str, topic: str, **settings: str) -> ServiceProcess:
        env = entra_env(
            oauth_broker.oauth,
            localkafka.NAMESPACE,
            oauth_broker.ca_file,
            topic,
            f"g-{topic}",
            **tokens.environment,
            **settings,
        )
        return services.start(module, clean_env=True, **env)

    return start


def new_topic(broker: localkafka.Broker, partitions: int = 2) -> str:
    name = f"entra-{uuid.uuid4().hex[:10]}"
    localkafka.create_topic(broker, name, partitions)
    return name


@pytest.mark.localkafka
def test_services_sign_in_and_keep_working_as_tokens_expire(
    oauth_broker: localkafka.Broker,
    services: Services,
    tokens: TokenService,
    signed_in: Callable[..., ServiceProcess],
) -> None:
    tokens.lifetime_s = LIFETIME_S
    topic = new_topic(oauth_broker)
    # DEBUG: kafka-python says when it re-authenticates.
    consumer = signed_in("consumer", topic, LOG_LEVEL="DEBUG")
    producer = signed_in("producer", topic, PRODUCER_RATE="20")

    # Sending through more than two token lifetimes (at 20 messages/s).
    wanted = (2 * LIFETIME_S + 5) * 20
    services.wait_until(
        lambda: len(seqs(producer, "message.sent")) >= wanted,
        timeout=2 * LIFETIME_S + 60,
        what=f"{wanted} sent",
    )
    last_sent = max(seqs(producer, "message.sent"))
    services.wait_until(
        lambda: last_sent in seqs(consumer, "message.received"), what="all sent so far received"
    )
    assert producer.stop() == 0
    assert consumer.stop() == 0

    sent, received = seqs(producer, "message.sent"), set(seqs(consumer, "message.received"))
    assert set(sent) <= received, "a message was lost across a token refresh"
    # Each service refreshes its token at half its life: 4 or more each in 35 s.
    assert len(tokens.issued) >= 8
    reauths = [
        line for line in consumer.lines if "Beginning SASL re-authentication" in line["event"]
    ]
    assert len(reauths) >= 3
    print(
        f"entra: {len(sent)} sent, all received; {len(tokens.issued)} tokens of "
        f"{LIFETIME_S} s; consumer re-authenticated {len(reauths)} times"
    )
    assert not [line for line in consumer.lines + producer.lines if line["level"] == "error"]
    started = consumer.events("service.started")[0]
    assert (started["security_protocol"], started["sasl_mechanism"]) == ("SASL_SSL", "OAUTHBEARER")
    # azure-identity asks managed identity for the scope's resource: the namespace.
    assert set(tokens.resources) == {localkafka.OAUTH_AUDIENCE}


def _one_clear_failure(service: ServiceProcess, reason: str) -> dict[str, object]:
    assert service.process.wait(60) == 1
    service.stop()
    (failed,) = service.events("service.failed")
    assert failed["reason"] == reason
    assert [line["event"] for line in service.lines if line["level"] == "error"] == [
        "service.failed"
    ]
    assert "Traceback" not in service.output()
    return failed


@pytest.mark.localkafka
def test_a_token_for_another_audience_is_one_clear_line(
    oauth_broker: localkafka.Broker,
    tokens: TokenService,
    signed_in: Callable[..., ServiceProcess],
) -> None:
    tokens.audience = "https://eventhubs.azure.net/"  # the wrong one people ask for
    producer = signed_in("producer", new_topic(oauth_broker))

    failed = _one_clear_failure(producer, "authentication_failed")
    assert "Entra ID token" in str(failed["error"])


@pytest.mark.localkafka
def test_an_expired_token_is_one_clear_line(
    oauth_broker: localkafka.Broker,
    tokens: TokenService,
    signed_in: Callable[..., ServiceProcess],
) -> None:
    tokens.issued_ago_s = 7200  # expired an hour ago, though the endpoint says otherwise
    consumer = signed_in("consumer", new_topic(oauth_broker))

    failed = _one_clear_failure(consumer, "authentication_failed")
    assert "invalid_token" in str(failed["error"])


@pytest.mark.localkafka
def test_a_credential_chain_that_fails_is_one_clear_line(
    oauth_broker: localkafka.Broker,
    tokens: TokenService,
    signed_in: Callable[..., ServiceProcess],
) -> None:
    tokens.fail_with = 400  # the identity endpoint refuses: no identity assigned
    producer = signed_in("producer", new_topic(oauth_broker))

    failed = _one_clear_failure(producer, "credential_unavailable")
    assert "ManagedIdentityCredential" in str(failed["error"])
    assert tokens.header not in producer.output()


@pytest.mark.localkafka
def test_no_credential_at_all_is_one_clear_line(
    oauth_broker: localkafka.Broker, services: Services, tmp_path: Path
) -> None:
    # Only the environment credential, with nothing in the environment: no managed
    # identity endpoint is probed, no Azure CLI is run.
    env = entra_env(
        oauth_broker.oauth,
        localkafka.NAMESPACE,
        oauth_broker.ca_file,
        new_topic(oauth_broker),
        "g-no-credential",
        AZURE_TOKEN_CREDENTIALS="EnvironmentCredential",
    )
    consumer = services.start("consumer", clean_env=True, **env)

    failed = _one_clear_failure(consumer, "credential_unavailable")
    assert "EnvironmentCredential" in str(failed["error"])


class FakeToken:
    def __init__(self, token: str, expires_on: int) -> None:
        self.token, self.expires_on = token, expires_on


def test_tokens_are_cached_and_refreshed_before_they_expire() -> None:
    calls: list[str] = []
    second = threading.Event()

    class Credential:
        def get_token(self, *scopes: str) -> FakeToken:
            calls.append(scopes[0])
            if len(calls) == 2:
                second.set()
            # Two seconds of life: refreshed at half of it, long before expiry.
            return FakeToken(f"token-{len(calls)}", int(time.time()) + 2)

    provider = EntraTokens("contoso.servicebus.windows.net", credential=Credential)
    seen: list[str] = []
    provider.on_token = seen.append
    provider.start()
    try:
        assert provider.token() == "token-1"
        assert provider.token() == "token-1", "cached, not fetched again"
        assert second.wait(10), "not refreshed in the background"
        assert provider.token() == "token-2"
    finally:
        provider.stop()
    assert calls[0] == "https://contoso.servicebus.windows.net/.default"
    assert seen[:2] == ["token-1", "token-2"]
    assert "token" not in repr(provider).split("scope=")[0]


def test_a_credential_that_cannot_sign_in_stops_the_start() -> None:
    class Credential:
        def get_token(self, *scopes: str) -> FakeToken:
            raise CredentialUnavailableError(message="ManagedIdentityCredential: no identity")

    provider = EntraTokens("contoso.servicebus.windows.net", credential=Credential)

    with pytest.raises(ServiceFailed) as failed:
        provider.start()
    assert failed.value.reason == "credential_unavailable"
    assert "ManagedIdentityCredential: no identity" in failed.value.detail
