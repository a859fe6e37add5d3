"""Helpers for the reliability tests that run ``reconciler`` against a faulty served emulator
(``tests/reliability/test_faults.py``, ``test_bad_answers.py``).

``Emulator`` is ``reconciler emulator serve --port 0`` with its request log (``-v``) in a file, not
a pipe: a few hundred requests' lines would fill a pipe nobody reads and stall the emulator.
``org_state`` reads every table of the org and makes two orgs comparable: the values the emulator
stamps or draws at random are left out, and the ids of the org's own rows (languages, default
queues, the output contract, the caller), random in every new org, are named instead.
"""

from __future__ import annotations

import asyncio
import json
import re
import selectors
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
from apply_helpers import SHARED_NAMES, command, environ

from reconciler.dataverse import tables as t
from reconciler.emulator import create_app

TIMEOUT = 120.0
API = "/api/data/v9.2/"
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)\b")
TABLES = {table.entity_set: table for table in t.TABLES.values()}
STAMPED = frozenset(
    {"@odata.etag", "createdon", "modifiedon", "versionnumber", "msdyn_fbverifytoken"}
)
"""What the emulator writes itself: times, row versions, and the verify token it draws."""
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

Rows = dict[str, list[dict[str, Any]]]


def reconciler(*args: str | Path, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(*args),
        capture_output=True,
        text=True,
        env=environ(),
        timeout=timeout,
        check=False,
    )


def start(*args: str | Path) -> subprocess.Popen[str]:
    """``reconciler ARGS`` in the background; ``finish`` it."""
    return subprocess.Popen(
        command(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ(),
    )


def finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    try:
        out, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(
            f"{process.args} did not finish: {out[-2000:]} {err[-2000:]}"
        ) from None
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


class Emulator:
    """``reconciler emulator serve --port 0 --db DB -v FLAGS``; the request log goes to
    ``DB.log``. Use as a context manager."""

    def __init__(self, db: Path, *flags: str) -> None:
        self.log_path = db.with_suffix(".log")
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            command("emulator", "serve", "--port", "0", "--db", db, "-v", *flags),
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            cwd=db.parent,
            env=environ(),
        )
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            ready = selector.select(30)
        line = self.process.stdout.readline() if ready else ""
        match = LISTENING.search(line)
        if match is None:
            self.stop()
            raise AssertionError(f"the emulator did not start: {line!r} {self.log()[-2000:]}")
        self.url = match[1]
        self.org = Org(db)

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> str:
        """Stop it (Ctrl-C); its request log."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()
        return self.log()

    def log(self) -> str:
        return self.log_path.read_text()


class Org:
    """The org in a database file, read through the Web API of an in-process emulator (no
    faults, whatever the served one injects), as any Dataverse tool would read it."""

    def __init__(self, db: Path) -> None:
        self.db = db

    def all_rows(self) -> Rows:
        return asyncio.run(self._read(list(TABLES)))[0]

    def who_am_i(self) -> dict[str, Any]:
        return asyncio.run(self._read([]))[1]

    async def _read(self, entity_sets: list[str]) -> tuple[Rows, dict[str, Any]]:
        app = create_app(self.db)
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url=f"http://org.local{API}",
                headers={"Authorization": "Bearer t"},
            ) as client:
                rows = {entity_set: await _rows(client, entity_set) for entity_set in entity_sets}
                who = (await client.get("WhoAmI")).json()
        finally:
            app.store.close()
        return rows, who


async def _rows(client: httpx.AsyncClient, entity_set: str) -> list[dict[str, Any]]:
    """Every row of ``entity_set``, every column, following ``@odata.nextLink``."""
    found: list[dict[str, Any]] = []
    url = entity_set
    while url:
        answer = await client.get(url)
        assert answer.status_code == 200, answer.text[:500]
        page = answer.json()
        found += page["value"]
        url = page.get("@odata.nextLink")
    return found


def org_labels(org: Org) -> dict[str, str]:
    """The org's own ids (before anything is applied) → a name that is the same in every org."""
    labels: dict[str, str] = {}
    for entity_set, rows in org.all_rows().items():
        table = TABLES[entity_set]
        for row in rows:
            name = row[table.primary_name]
            labels[str(row[table.primary_key]).lower()] = f"<{entity_set}:{name}>"
    who = org.who_am_i()
    for key in ("UserId", "BusinessUnitId", "OrganizationId"):
        labels[who[key].lower()] = f"<{key}>"
    return labels


def org_state(org: Org, labels: dict[str, str]) -> Rows:
    """Every table's rows, comparable between orgs: stamped columns left out, the org's own ids
    named (``labels``), rows in a stable order. Fails on a duplicate primary key or name."""
    state: Rows = {}
    for entity_set, rows in org.all_rows().items():
        table = TABLES[entity_set]
        keys = [str(row[table.primary_key]).lower() for row in rows]
        assert len(keys) == len(set(keys)), f"duplicate rows in {entity_set}"
        names = [row[table.primary_name] for row in rows]
        if entity_set not in SHARED_NAMES:
            assert len(names) == len(set(names)), f"duplicate {table.primary_name} in {entity_set}"
        normal = [
            {
                column: _named(value, labels)
                for column, value in row.items()
                if column not in STAMPED
            }
            for row in rows
        ]
        state[entity_set] = sorted(normal, key=lambda row: json.dumps(row, sort_keys=True))
    return state


def _named(value: Any, labels: dict[str, str]) -> Any:
    if not isinstance(value, str):
        return value
    return GUID.sub(lambda m: labels.get(m[0].lower(), m[0].lower()), value)


def differences(expected: Rows, found: Rows) -> list[str]:
    """What differs, one line per row (empty when equal)."""
    lines: list[str] = []
    for entity_set in sorted(set(expected) | set(found)):
        table = TABLES[entity_set]
        want = {str(r[table.primary_key]): r for r in expected.get(entity_set, [])}
        got = {str(r[table.primary_key]): r for r in found.get(entity_set, [])}
        for key in sorted(set(want) | set(got)):
            if key not in got:
                lines.append(f"{entity_set}({key}) missing")
            elif key not in want:
                lines.append(f"{entity_set}({key}) not expected")
            elif want[key] != got[key]:
                columns = sorted(
                    c for c in set(want[key]) | set(got[key]) if want[key].get(c) != got[key].get(c)
                )
                lines.append(f"{entity_set}({key}) differs in {', '.join(columns)}")
    return lines
