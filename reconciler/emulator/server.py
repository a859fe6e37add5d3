"""Serve the emulator over HTTP on the loopback interface with uvicorn."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn

from reconciler.emulator.app import EmulatorApp, EmulatorConfig
from reconciler.emulator.store import Store

HOST = "127.0.0.1"


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


def make_server(app: EmulatorApp) -> uvicorn.Server:
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", access_log=False, timeout_graceful_shutdown=5
    )
    return uvicorn.Server(config)


def serve(
    db: str | Path,
    port: int,
    config: EmulatorConfig,
    announce: Callable[[str], None],
) -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM); ``announce`` gets the URL once listening."""
    app = EmulatorApp(Store(db), config)
    with bound_socket(port) as sock:
        host, bound = sock.getsockname()[:2]
        server = make_server(app)
        announce(f"http://{host}:{bound}")
        server.run(sockets=[sock])
