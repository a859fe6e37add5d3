"""``reconciler emulator serve`` in a subprocess, for tests and bench scripts.

Importable from the tests (``tests/`` is on ``sys.path`` under pytest) and from the bench
scripts, which put ``tests/`` on ``sys.path`` themselves. Needs no pytest: a bench runs in the
plain ``make run`` environment.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

TIMEOUT = 15.0
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:(\d+))\b")
API = "/api/data/v9.2/"


class Served:
    """``reconciler emulator serve --port 0`` in a subprocess; ``kill()`` it at the end (or use
    it as a context manager)."""

    def __init__(self, db: Path, *extra: str, token: str = "t") -> None:
        self.token = token
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reconciler",
                "emulator",
                "serve",
                "--port",
                "0",
                "--db",
                str(db),
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=db.parent,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            self.first_line = self._read_line()
            match = LISTENING.search(self.first_line)
            assert match is not None, self.first_line
        except BaseException:
            self.kill()
            raise
        self.url = match[1]

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def _read_line(self) -> str:
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            assert selector.select(TIMEOUT), "no output from reconciler emulator serve"
        return self.process.stdout.readline()

    # -- raw Web API access (any Dataverse tool would do the same) -----------------------------

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token if token is not None else self.token}"}

    def get(self, path: str, token: str | None = None, **params: str) -> httpx.Response:
        return httpx.get(
            f"{self.url}{API}{path}",
            params=params or None,
            headers=self.headers(token),
            timeout=TIMEOUT,
            trust_env=False,
        )

    def post(self, path: str, json: dict[str, Any], **headers: str) -> httpx.Response:
        return httpx.post(
            f"{self.url}{API}{path}",
            json=json,
            headers={**self.headers(), **headers},
            timeout=TIMEOUT,
            trust_env=False,
        )

    def delete(self, path: str) -> httpx.Response:
        return httpx.delete(
            f"{self.url}{API}{path}", headers=self.headers(), timeout=TIMEOUT, trust_env=False
        )

    def patch(self, path: str, json: dict[str, Any], **headers: str) -> httpx.Response:
        return httpx.patch(
            f"{self.url}{API}{path}",
            json=json,
            headers={**self.headers(), **headers},
            timeout=TIMEOUT,
            trust_env=False,
        )

    def rows(self, entity_set: str, select: list[str] | None = None) -> list[dict[str, Any]]:
        """Every row of ``entity_set``, following ``@odata.nextLink``."""
        params = {"$select": ",".join(select)} if select else {}
        answer = self.get(entity_set, **params)
        found: list[dict[str, Any]] = []
        while True:
            answer.raise_for_status()
            page = answer.json()
            found += page["value"]
            link = page.get("@odata.nextLink")
            if not link:
                return found
            answer = httpx.get(link, headers=self.headers(), timeout=TIMEOUT, trust_env=False)

    # -- ending --------------------------------------------------------------------------------

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str, str]:
        """Send ``sig`` and wait for the process to end; fail if it does not."""
        self.process.send_signal(sig)
        try:
            out, err = self.process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
            raise AssertionError(
                f"the emulator did not stop on signal {sig}: {out!r} {err!r}"
            ) from None
        return self.process.returncode, out, err

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


@contextlib.contextmanager
def in_thread(app: Any) -> Iterator[str]:
    """``app`` (an ``EmulatorApp``) under uvicorn on a free loopback port, in a thread of this
    process; yields the org URL (``http://127.0.0.1:PORT``)."""
    from reconciler.emulator.server import bound_socket, make_server

    with bound_socket(0) as sock:
        server = make_server(app)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        host, port = sock.getsockname()[:2]
        try:
            yield f"http://{host}:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            assert not thread.is_alive()
