"""OpenTelemetry's own environment variables, checked before the SDK reads them.

The SDK falls back to a default, with a warning in the middle of the logs,
on a value it cannot parse: a sampler misspelt as ``parentbased_traceid``
would trace everything. Here every such value is one line at start and
exit status 2, like the service's own settings. The SDK and exporters still
read the variables themselves, so they mean exactly what the specification
says; this module only decides whether tracing is on, and refuses what
would be ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from urllib.parse import unquote, urlsplit

from common.config import ConfigError, secret

EXPORTERS = ("otlp", "console", "none")
#: Where an installed package names its exporter (Azure Monitor's is
#: ``azure_monitor_opentelemetry_exporter``); OTEL_TRACES_EXPORTER may name any.
EXPORTER_ENTRY_POINTS = "opentelemetry_traces_exporter"
#: Azure Monitor's exporter reads its connection string (a key) from here.
_APPLICATION_INSIGHTS = "APPLICATIONINSIGHTS_CONNECTION_STRING"
#: The OTLP protocols OpenTelemetry's Python exporters speak (not http/json).
PROTOCOLS = ("http/protobuf", "grpc")
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")
COMPRESSIONS = ("none", "gzip", "deflate")
#: Whole milliseconds (or, for the OTLP timeouts, seconds as Python's exporters read them).
_COUNTS = {
    "OTEL_BSP_SCHEDULE_DELAY": 0,
    "OTEL_BSP_EXPORT_TIMEOUT": 0,
    "OTEL_BSP_MAX_QUEUE_SIZE": 1,
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": 1,
}
_TIMEOUTS = ("OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_HEADERS = ("OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS")
#: The OTEL_* variables docker-compose.yml and .env.example pass on (every one the
#: SDK reads works; these are what most setups need).
COMPOSE_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_TRACES_EXPORTER",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SDK_DISABLED",
)


@dataclass(frozen=True)
class TracingSettings:
    """Whether and how the service traces, as OTEL_* decided it."""

    enabled: bool
    #: What OTEL_TRACES_EXPORTER names (``otlp`` when only an endpoint is set).
    exporters: tuple[str, ...] = ()
    #: The OTLP protocol: ``http/protobuf`` (the specification's default) or ``grpc``.
    protocol: str = "http/protobuf"
    #: Where OTLP goes, for the start line: scheme, host and port, no credentials.
    endpoint: str | None = None
    sampler: str = "parentbased_always_on"
    sampler_arg: float | None = None
    #: The service's name when neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES
    #: names it: ``producer`` or ``consumer``.
    default_service_name: str = ""
    #: Values of the OTLP headers (API keys, often): for the log redactor.
    secrets: tuple[str, ...] = field(default=(), repr=False)
    #: The OTLP headers when a file gave them (``OTEL_EXPORTER_OTLP_HEADERS_FILE``), for
    #: the exporter; None when the SDK reads them from the variables itself.
    headers: Mapping[str, str] | None = field(default=None, repr=False)


OFF = TracingSettings(enabled=False)


def read_settings(environ: Mapping[str, str], service: str) -> TracingSettings:
    """Tracing as *environ*'s OTEL_* variables say; ConfigError names each bad one.

    On when OTEL_TRACES_EXPORTER names an exporter, or, with it unset, when an
    OTLP endpoint is set; off with OTEL_SDK_DISABLED=true whatever else is set.
    """
    problems: list[str] = []
    from_files = _headers_from_files(environ, problems)
    get = _Reader({**environ, **from_files}, problems)
    if get.boolean("OTEL_SDK_DISABLED"):
        return OFF
    exporters = get.exporters()
    endpoint = get.endpoint()
    protocol = get.choice("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", PROTOCOLS) or get.choice(
        "OTEL_EXPORTER_OTLP_PROTOCOL", PROTOCOLS
    )
    sampler = get.choice("OTEL_TRACES_SAMPLER", SAMPLERS, lower=True) or "parentbased_always_on"
    sampler_arg = get.ratio() if sampler in RATIO_SAMPLERS else None
    for name, least in _COUNTS.items():
        get.count(name, least)
    for name in _TIMEOUTS:
        get.seconds(name)
    get.choice("OTEL_EXPORTER_OTLP_COMPRESSION", COMPRESSIONS)
    get.choice("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", COMPRESSIONS)
    get.not_blank("OTEL_SERVICE_NAME")
    get.pairs("OTEL_RESOURCE_ATTRIBUTES")
    headers = {name: get.pairs(name) for name in _HEADERS}
    secrets = tuple(v for pairs in headers.values() for v in pairs.values())
    secrets += tuple(get.secrets)
    secrets += tuple(v for v in (environ.get(_APPLICATION_INSIGHTS, "").strip(),) if v)
    get.batch_within_queue()
    if problems:
        raise ConfigError(problems)
    if exporters is None:
        exporters = ("otlp",) if endpoint is not None else ()
    exporters = tuple(e for e in exporters if e != "none")
    return TracingSettings(
        enabled=bool(exporters),
        exporters=exporters,
        protocol=protocol or "http/protobuf",
        endpoint=endpoint,
        sampler=sampler,
        sampler_arg=sampler_arg,
        default_service_name=service,
        secrets=secrets,
        # The SDK's order: the traces' own headers, else the general ones.
        headers=(headers[_HEADERS[1]] or headers[_HEADERS[0]]) if from_files else None,
    )


def _headers_from_files(environ: Mapping[str, str], problems: list[str]) -> dict[str, str]:
    """The OTLP headers variables given as files (``NAME_FILE``): their text, by name."""
    found = {}
    for name in _HEADERS:
        if not environ.get(f"{name}_FILE", "").strip():
            continue
        try:
            found[name] = secret(name, environ) or ""
        except ConfigError as exc:
            problems += exc.problems
    return found


class _Reader:
    """Reads one variable at a time, noting a problem (never the value) for a bad one."""

    def __init__(self, environ: Mapping[str, str], problems: list[str]) -> None:
        self._environ = environ
        self._problems = problems
        #: Values read that are credentials: for the log redactor.
        self.secrets: list[str] = []

    def _get(self, name: str) -> str | None:
        value = self._environ.get(name)
        # The specification: an empty value is the same as an unset one.
        return value.strip() if value and value.strip() else None

    def _bad(self, name: str, what: str) -> None:
        self._problems.append(f"{name}: {what}")

    def boolean(self, name: str) -> bool:
        value = self._get(name)
        if value is None or value.lower() == "false":
            return False
        if value.lower() == "true":
            return True
        self._bad(name, "must be true or false")
        return False

    def choice(self, name: str, allowed: tuple[str, ...], *, lower: bool = False) -> str | None:
        value = self._get(name)
        if value is None:
            return None
        value = value.lower() if lower else value
        if value not in allowed:
            self._bad(name, f"must be one of {', '.join(allowed)}")
            return None
        return value

    def exporters(self) -> tuple[str, ...] | None:
        value = self._get("OTEL_TRACES_EXPORTER")
        if value is None:
            return None
        named = tuple(part.strip() for part in value.split(","))
        installed = {e.name for e in entry_points(group=EXPORTER_ENTRY_POINTS)}
        unknown = [part for part in named if part not in EXPORTERS and part not in installed]
        if unknown:
            self._bad(
                "OTEL_TRACES_EXPORTER",
                f"must list {', '.join(EXPORTERS)} or an installed exporter's name "
                f"({', '.join(sorted(installed))}), comma-separated",
            )
            return None
        return named

    def endpoint(self) -> str | None:
        """The traces endpoint in use, shown without credentials; checks both variables."""
        shown = None
        for name in _ENDPOINTS:
            value = self._get(name)
            if value is None:
                continue
            url = urlsplit(value)
            try:
                port = url.port
            except ValueError:
                port, url = None, url._replace(netloc="")
            if url.scheme not in ("http", "https") or not url.hostname:
                self._bad(name, "must be a URL such as http://localhost:4318")
                continue
            shown = f"{url.scheme}://{url.hostname}{'' if port is None else f':{port}'}{url.path}"
            if url.password:
                self.secrets.append(unquote(url.password))
        return shown

    def ratio(self) -> float:
        value = self._get("OTEL_TRACES_SAMPLER_ARG")
        if value is None:
            return 1.0  # the specification's default for the ratio samplers
        try:
            ratio = float(value)
        except ValueError:
            ratio = math.nan
        if not 0.0 <= ratio <= 1.0:
            self._bad("OTEL_TRACES_SAMPLER_ARG", "must be a number from 0 to 1")
            return 1.0
        return ratio

    def count(self, name: str, least: int) -> int | None:
        value = self._get(name)
        if value is None:
            return None
        if not value.isdigit() or int(value) < least:
            self._bad(name, f"must be a whole number of at least {least}")
            return None
        return int(value)

    def seconds(self, name: str) -> None:
        value = self._get(name)
        if value is None:
            return
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
        if not seconds >= 0:
            self._bad(name, "must be a number of seconds, 0 or more")

    def not_blank(self, name: str) -> None:
        value = self._environ.get(name)
        if value is not None and not value.strip():
            self._bad(name, "is blank")

    def pairs(self, name: str) -> dict[str, str]:
        """``key=value,key=value``, percent-decoded; a pair without ``=`` is a problem."""
        value = self._get(name)
        if value is None:
            return {}
        found: dict[str, str] = {}
        for pair in value.split(","):
            key, sign, item = pair.partition("=")
            if not sign or not key.strip():
                self._bad(name, "must be key=value pairs separated by commas")
                return {}
            found[unquote(key.strip())] = unquote(item.strip())
        return found

    def batch_within_queue(self) -> None:
        batch = self._get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
        queue = self._get("OTEL_BSP_MAX_QUEUE_SIZE") or "2048"
        if batch and batch.isdigit() and queue.isdigit() and int(batch) > int(queue):
            self._bad("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "must not exceed OTEL_BSP_MAX_QUEUE_SIZE")
