"""Running ``reconciler apply`` in subprocesses and checking what a served emulator holds after.

Shared by the apply resilience tests (``tests/test_apply_resilience.py``) and the crash tests of
``tests/reliability/``: the CLI run to completion (``reconciler``) or line by line so it can be
killed half-way (``Applying``, the ``applying`` fixture); every row of every table read over the
Web API; and the checks that a target holds exactly the planned records and plans no change.
"""

from __future__ import annotations

import json
import re
import selectors
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import synthetic
from served import Served

from reconciler.dataverse import tables as t
from reconciler.mapping import kinds as k

TIMEOUT = 60.0
STEP_LINE = re.compile(r"^(?:[-+~] \S+: .* \([\d.]+ s\)|! \S+: .+)$")
SUMMARY = re.compile(r"^Apply (?:complete|incomplete): ", re.MULTILINE)
HEADER = re.compile(r"^Applying (\d+) steps?\.\.\.$")
LEDGER = t.TABLES[t.ANNOTATION]
TABLES = {table.entity_set: table for table in t.TABLES.values() if table is not LEDGER}
SHARED_NAMES = frozenset({t.TABLES[t.WORKSTREAM_CAPACITY_PROFILE].entity_set})
"""Tables whose rows may share a name: a workstream's profile row is named after its profile,
so workstreams sharing a profile have rows of one name (ALM's two chat workstreams do)."""
"""Every table of the org, by entity set: the ones the reconciler manages, and the languages
(not the notes that hold the ledger: ``ledger_ids``)."""


# --- running reconciler -----------------------------------------------------------------------


def environ(**extra: str) -> dict[str, str]:
    env = synthetic.environ()
    for name in ("RECONCILER_TARGET", "NO_COLOR", "DATAVERSE_TOKEN"):
        env.pop(name, None)
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def command(*args: str | Path) -> list[str]:
    """``python -m reconciler ARGS``, plain (``emulator serve`` prints no colour to turn off)."""
    plain = [] if args[:1] == ("emulator",) else ["--no-color"]
    return [sys.executable, "-m", "reconciler", *map(str, args), *plain]


def reconciler(
    *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(*args),
        capture_output=True,
        text=True,
        env=env or environ(),
        cwd=cwd,
        timeout=TIMEOUT,
        check=False,
    )


def plan_json(*args: str | Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = reconciler("plan", *args, "--format", "json", env=env)
    assert done.returncode in (0, 2), done.stderr
    plan: dict[str, Any] = json.loads(done.stdout)
    return plan


class Applying:
    """``reconciler apply`` running in a subprocess, its output read line by line."""

    def __init__(self, *args: str | Path) -> None:
        self.process = subprocess.Popen(
            command("apply", *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environ(),
        )
        assert self.process.stdout is not None
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.process.stdout, selectors.EVENT_READ)
        self.lines: list[str] = []
        self.steps = 0
        """Step lines read so far."""
        self.total: int | None = None
        """The steps apply announced (``Applying N steps...``), once that line was read."""

    def read_line(self, timeout: float = TIMEOUT) -> str | None:
        """The next line; ``None`` when none came within ``timeout`` seconds."""
        assert self.process.stdout is not None
        if not self.selector.select(timeout):
            return None
        line = self.process.stdout.readline()
        assert line, f"apply ended: {''.join(self.lines)}"
        self.lines.append(line)
        self.steps += bool(STEP_LINE.match(line.rstrip("\n")))
        if header := HEADER.match(line.rstrip("\n")):
            self.total = int(header[1])
        return line

    def wait_for_steps(self, steps: int) -> None:
        """Read until ``steps`` step lines have come."""
        while self.steps < steps:
            assert self.read_line() is not None, "apply went quiet"

    def wait_until_quiet(self, quiet: float) -> None:
        """Read until no line comes for ``quiet`` seconds."""
        deadline = time.monotonic() + TIMEOUT
        while self.read_line(quiet) is not None:
            assert time.monotonic() < deadline, "apply never went quiet"

    def kill(self) -> str:
        """SIGKILL it; everything it printed."""
        self.process.send_signal(signal.SIGKILL)
        rest, err = self.process.communicate(timeout=TIMEOUT)
        self.selector.close()
        assert self.process.returncode == -signal.SIGKILL, (self.process.returncode, err)
        return "".join(self.lines) + rest

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()
        self.selector.close()


@pytest.fixture
def applying() -> Iterator[Callable[..., Applying]]:
    started: list[Applying] = []

    def start(*args: str | Path) -> Applying:
        started.append(Applying(*args))
        return started[-1]

    yield start
    for process in started:
        process.close()


def outcome(output: str) -> str:
    """Apply's summary and problem lines (not the plan, not the follow-up checklist)."""
    return "\n".join(
        line for line in output.splitlines() if line.startswith(("Apply ", "! ", "error:"))
    )


def count(pattern: str, output: str) -> int:
    return len(re.findall(pattern, output, re.MULTILINE))


# --- reading the target -----------------------------------------------------------------------


def target_rows(emulator: Served) -> dict[str, list[dict[str, Any]]]:
    """Every row (id and name) of every table, through the Web API."""
    return {
        entity_set: emulator.rows(entity_set, [table.primary_key, table.primary_name])
        for entity_set, table in TABLES.items()
    }


def ids(rows: dict[str, list[dict[str, Any]]]) -> dict[str, set[str]]:
    return {
        entity_set: {str(row[TABLES[entity_set].primary_key]).lower() for row in found}
        for entity_set, found in rows.items()
    }


def planned_ids(plan: dict[str, Any]) -> dict[str, set[str]]:
    by_table: dict[str, set[str]] = {entity_set: set() for entity_set in TABLES}
    for change in plan["changes"]:
        by_table[k.BY_NAME[change["kind"]].table.entity_set].add(change["id"].lower())
    return by_table


def held(emulator: Served, planned: dict[str, set[str]]) -> int:
    """How many of the planned records the target holds."""
    found = ids(target_rows(emulator))
    return sum(len(found[entity_set] & wanted) for entity_set, wanted in planned.items())


def ledger_ids(emulator: Served) -> set[str]:
    """The record ids the ledger's notes list (docs/ownership.md), read over the Web API."""
    found: set[str] = set()
    for note in emulator.rows(LEDGER.entity_set, ["subject", "notetext"]):
        if str(note["subject"]).startswith("reconciler ledger "):
            lines = str(note["notetext"]).splitlines()[1:]
            found |= {line.split()[2].lower() for line in lines if line.strip()}
    return found


def assert_holds_exactly(
    emulator: Served, planned: dict[str, set[str]], system: dict[str, set[str]]
) -> None:
    """The target holds the org's own rows and the planned records, each once, nothing else;
    the ledger lists exactly the planned records."""
    assert ledger_ids(emulator) == set().union(*planned.values())
    rows = target_rows(emulator)
    for entity_set, found in rows.items():
        name = TABLES[entity_set].primary_name
        names = Counter(row[name] for row in found)
        if entity_set not in SHARED_NAMES:
            assert [n for n, times in names.items() if times > 1] == [], entity_set
        assert len({str(row[TABLES[entity_set].primary_key]) for row in found}) == len(found)
        ours = ids({entity_set: found})[entity_set] - system[entity_set]
        assert ours == planned[entity_set], entity_set
        assert len(found) == len(system[entity_set]) + len(planned[entity_set]), entity_set


def assert_settled(project: Path, target: str, planned: dict[str, set[str]]) -> None:
    """A plan shows no changes, and a pruning plan no deletes and no strangers."""
    again = reconciler("plan", project, "--target", target, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    pruned = plan_json(project, "--target", target, "--prune")
    assert pruned["summary"]["delete"] == 0
    assert pruned["unmanaged"] == {}
    assert pruned["summary"]["noop"] == sum(len(wanted) for wanted in planned.values())
    assert {key: n for key, n in pruned["summary"].items() if key != "noop" and n} == {}
