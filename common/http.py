"""One small HTTP server per process: /metrics, /healthz and /readyz.

prometheus-client's WSGI app serves /metrics; the health routes answer from a
``Health`` object that the service's main loop keeps up to date, so the
server thread never touches the Kafka client. The server listens on IPv6 or
IPv4, whichever METRICS_HOST names.

In a cluster that port is reachable by every pod, so no client may hold the
server: a request must arrive within ``REQUEST_TIMEOUT_S`` or its connection is
dropped, and at most ``MAX_CONNECTIONS`` are served at once; one more is closed
as soon as it is accepted. Half-open connections therefore cost at most that
many threads, and each for at most that long.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from common.health import Health

StartResponse = Callable[..., Any]
UNAVAILABLE = "503 Service Unavailable"
#: How long a client has to send its request (and to read the answer).
REQUEST_TIMEOUT_S = 5.0
#: Connections served at once; Prometheus and the probes need a handful.
MAX_CONNECTIONS = 64


class _QuietHandler(WSGIRequestHandler):
    # Scrapes every few seconds would drown the service's own log.
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _app(health: Health, registry: CollectorRegistry) -> Callable[..., Iterable[bytes]]:
    metrics = make_wsgi_app(registry)

    def plain(start_response: StartResponse, status: str, body: str) -> list[bytes]:
        data = body.encode()
        start_response(
            status,
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data)))],
        )
        return [data]

    def answer(path: str) -> tuple[str, str]:
        if path == "/healthz":
            return ("200 OK", "ok\n") if health.alive else (UNAVAILABLE, "main loop stalled\n")
        if path == "/readyz":
            return ("200 OK", "ready\n") if health.ready else (UNAVAILABLE, f"{health.reason}\n")
        return "404 Not Found", "try /metrics, /healthz or /readyz\n"

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return plain(start_response, "405 Method Not Allowed", "use GET\n")
        if environ.get("PATH_INFO") == "/metrics":
            result: Iterable[bytes] = metrics(environ, start_response)
            return result
        return plain(start_response, *answer(environ.get("PATH_INFO", "")))

    return app


def _server_class(host: str, port: int, max_connections: int) -> type[ThreadingWSGIServer]:
    """prometheus-client's threading server on *host*'s address family, with a bound.

    socketserver binds IPv4 unless told otherwise, so ``::`` failed to bind.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family = infos[0][0] if infos else socket.AF_INET
    slots = threading.BoundedSemaphore(max_connections)

    class Server(ThreadingWSGIServer):
        address_family = family
        # socketserver's 5 let a burst of connections wait seconds for SYN retries.
        request_queue_size = 128

        def process_request(self, request: Any, client_address: Any) -> None:
            if not slots.acquire(blocking=False):
                self.shutdown_request(request)  # full: this one is closed, not queued
                return
            try:
                super().process_request(request, client_address)
            except BaseException:
                slots.release()  # no thread was started to release it
                raise

        def process_request_thread(self, request: Any, client_address: Any) -> None:
            try:
                super().process_request_thread(request, client_address)
            finally:
                slots.release()

        def handle_error(self, request: Any, client_address: Any) -> None:
            # A client that timed out or went away is not the service's error,
            # and socketserver would print its traceback to stderr.
            if not isinstance(sys.exc_info()[1], OSError):
                super().handle_error(request, client_address)

    return Server


class HttpServer:
    """The running server; ``port`` is the one bound (useful with port 0)."""

    def __init__(
        self,
        host: str,
        port: int,
        health: Health,
        registry: CollectorRegistry = REGISTRY,
        *,
        max_connections: int = MAX_CONNECTIONS,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        # StreamRequestHandler sets its timeout on the socket: a slow client times out.
        handler = type("Handler", (_QuietHandler,), {"timeout": request_timeout_s})
        self._server = make_server(
            host,
            port,
            _app(health, registry),
            _server_class(host, port, max_connections),
            handler_class=handler,
        )
        self.port: int = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
