"""Serve the emulator over HTTP on the loopback interface with uvicorn.

uvicorn comes with the ``emulator`` extra (``pip install 'reconciler[emulator]'``), not with
the package: only serving needs it, and the embedded ``local:`` target runs the same app
in-process. It is imported when a server is made, and its absence is a usage error that says
what to install.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from reconciler.emulator.app import LOOPBACK_HOSTS, MAX_URL_CHARS, EmulatorApp, EmulatorConfig
from reconciler.emulator.store import Store
from reconciler.errors import UsageError

if TYPE_CHECKING:
    import uvicorn

HOST = "127.0.0.1"
INSTALL_HINT = "pip install 'reconciler[emulator]'"


def require_uvicorn() -> None:
    """``UsageError`` naming the extra to install when uvicorn is not installed."""
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        raise UsageError(
            f"serving the emulator needs uvicorn, which is not installed: {INSTALL_HINT}"
        ) from None


@contextlib.contextmanager
def bound_socket(port: int, host: str = HOST) -> Iterator[socket.socket]:
    """A listening socket on ``host:port``; port 0 picks a free one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
        yield sock
    finally:
        sock.close()


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _server_class() -> type[uvicorn.Server]:
    """uvicorn's Server, but SIGINT/SIGTERM end ``run()`` normally instead of being re-raised
    after (a class made on call: uvicorn is imported only here)."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield  # signals only reach the main thread; tests stop the server by flag
                return
            previous = {sig: signal.signal(sig, self._on_signal) for sig in _STOP_SIGNALS}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

        def _on_signal(self, signum: int, frame: FrameType | None) -> None:
            if self.should_exit:  # a second Ctrl-C: stop without waiting for open requests
                self.force_exit = True
            self.should_exit = True

    return Server


def _tracking_protocol(app: EmulatorApp) -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol (h11, whatever else is installed), keeping ``app.connections``
    up to date so that an injected fault can drop a request's connection."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Tracking(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if self.client is not None:  # the address the request's scope names
                app.connections[self.client] = transport

        def connection_lost(self, exc: Exception | None) -> None:
            if self.client is not None:
                app.connections.pop(self.client, None)
            super().connection_lost(exc)

    return Tracking


HEAD_BYTES = 2 * MAX_URL_CHARS
"""The most a request's head (request line and headers) may take: h11's default, 16 KiB, would
refuse a URL Dataverse accepts (up to ``app.MAX_URL_CHARS``) with uvicorn's plain-text 400
before the app saw it. This leaves room for that URL and a long bearer token; the app answers a
URL past Dataverse's limit with its 414, a head past this one still gets uvicorn's 400."""


def make_server(app: EmulatorApp) -> uvicorn.Server:
    """uvicorn serving ``app`` over a socket; from here on the app answers only requests whose
    ``Host`` is a loopback name (``app.LOOPBACK_HOSTS``); ``UsageError`` without uvicorn."""
    require_uvicorn()
    import uvicorn

    app.served_hosts = frozenset(LOOPBACK_HOSTS)
    config = uvicorn.Config(
        app,
        http=_tracking_protocol(app),
        log_level="warning",
        lifespan="on",
        access_log=False,
        timeout_graceful_shutdown=5,
        h11_max_incomplete_event_size=HEAD_BYTES,
    )
    return _server_class()(config)


def serve(
    db: str | Path,
    port: int,
    config: EmulatorConfig,
    announce: Callable[[str], None],
) -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM); ``announce`` gets the URL once listening.
    Without uvicorn, a ``UsageError`` before the database is opened or a port bound."""
    require_uvicorn()
    app = EmulatorApp(Store(db), config)
    with bound_socket(port) as sock:
        host, bound = sock.getsockname()[:2]
        server = make_server(app)
        announce(f"http://{host}:{bound}")
        server.run(sockets=[sock])
