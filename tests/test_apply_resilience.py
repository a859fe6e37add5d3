"""``reconciler apply`` when things go wrong, end to end: real processes, real loopback sockets.

- killed (SIGKILL) half-way, against a served emulator (``apply PATHS`` and ``apply --plan``)
  and against the in-process SQLite target (inside a write), then run again: the target ends
  with exactly the planned records, no duplicates, and a plan with no changes;
- a saved plan whose record changed out of band: that record is stale, what needs it is
  skipped, what does not still applies;
- an emulator that answers a fifth of the requests with 429 or 503: apply completes anyway.

Projects come from ``tests/synthetic.py``, served emulators from ``tests/served.py``.
"""

from __future__ import annotations

import json
import re
import selectors
import shutil
import signal
import sqlite3
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

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60.0
STEP_LINE = re.compile(r"^(?:[-+~] \S+: .* \([\d.]+ s\)|! \S+: .+)$")
SUMMARY = re.compile(r"^Apply (?:complete|incomplete): ", re.MULTILINE)
TABLES = {table.entity_set: table for table in t.TABLES.values()}
"""Every table of the org, by entity set: the ones the reconciler manages, and the languages."""


# --- running reconciler -----------------------------------------------------------------------


def environ(**extra: str) -> dict[str, str]:
    env = synthetic.environ()
    for name in ("RECONCILER_TARGET", "NO_COLOR", "DATAVERSE_TOKEN"):
        env.pop(name, None)
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "reconciler", *map(str, args), "--no-color"]


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

    def read_line(self, timeout: float = TIMEOUT) -> str | None:
        """The next line; ``None`` when none came within ``timeout`` seconds."""
        assert self.process.stdout is not None
        if not self.selector.select(timeout):
            return None
        line = self.process.stdout.readline()
        assert line, f"apply ended: {''.join(self.lines)}"
        self.lines.append(line)
        self.steps += bool(STEP_LINE.match(line.rstrip("\n")))
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


def assert_holds_exactly(
    emulator: Served, planned: dict[str, set[str]], system: dict[str, set[str]]
) -> None:
    """The target holds the org's own rows and the planned records, each once, nothing else."""
    rows = target_rows(emulator)
    for entity_set, found in rows.items():
        name = TABLES[entity_set].primary_name
        names = Counter(row[name] for row in found)
        assert [n for n, times in names.items() if times > 1] == [], entity_set
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


# --- killed half-way --------------------------------------------------------------------------


@pytest.mark.parametrize("saved", [False, True], ids=["manifests", "saved-plan"])
def test_an_apply_killed_mid_way_is_finished_by_the_next_one(tmp_path, applying, saved):
    project = tmp_path / "project"
    records = synthetic.write_project(project, records=200)
    with Served(tmp_path / "org.db", "--latency-ms", "25") as emulator:
        system = ids(target_rows(emulator))
        saved_plan = tmp_path / "p.json"
        made = reconciler("plan", project, "--target", emulator.url, "--out", saved_plan)
        assert made.returncode == 0, made.stderr
        plan = json.loads(saved_plan.read_text())
        assert plan["summary"]["create"] == len(plan["changes"]) == records >= 200
        planned = planned_ids(plan)
        what = ["--plan", saved_plan] if saved else [project, "--target", emulator.url]
        apply = [*what, "--yes", "--parallelism", "4"]

        killed = applying(*apply)
        killed.wait_for_steps(40)
        printed = killed.kill()
        time.sleep(0.2)  # the requests in flight when it died: the emulator finishes them

        assert not SUMMARY.search(printed), "the killed apply finished"
        there = held(emulator, planned)
        assert count(r"^\+ .*: created ", printed) <= there < records
        finished = reconciler("apply", *apply)
        assert finished.returncode == 0, outcome(finished.stdout) + finished.stderr
        out = finished.stdout
        assert "Apply complete: " in out
        assert count(r"^\+ .*: created ", out) == records - there
        # a saved plan creates everything again: what is there already is updated as planned
        assert count(r"^\+ .*: already there; updated ", out) == (there if saved else 0)
        assert_holds_exactly(emulator, planned, system)
        assert_settled(project, emulator.url, planned)


def test_a_saved_plan_of_updates_killed_mid_way_is_finished_by_applying_it_again(
    tmp_path, applying
):
    project = tmp_path / "project"
    documents = synthetic.project(synthetic.documents_for(100))
    synthetic.write(project, documents)
    with Served(tmp_path / "org.db", "--latency-ms", "25") as emulator:
        base = reconciler("apply", project, "--yes", "--target", emulator.url)
        assert base.returncode == 0, outcome(base.stdout) + base.stderr
        synthetic.write(project, synthetic.revised(documents))
        saved_plan = tmp_path / "p.json"
        made = reconciler("plan", project, "--target", emulator.url, "--out", saved_plan)
        assert made.returncode == 0, made.stderr
        summary = json.loads(saved_plan.read_text())["summary"]
        assert summary["update"] >= 30
        assert summary["create"] == summary["delete"] == 0
        apply = ["--plan", saved_plan, "--yes", "--parallelism", "4"]

        killed = applying(*apply)
        killed.wait_for_steps(8)
        assert not SUMMARY.search(killed.kill()), "the killed apply finished"
        time.sleep(0.2)  # the requests in flight when it died: the emulator finishes them
        finished = reconciler("apply", *apply)

        assert finished.returncode == 0, outcome(finished.stdout) + finished.stderr
        again = reconciler("plan", project, "--target", emulator.url, "--detailed-exitcode")
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr


def test_an_apply_to_the_local_target_killed_mid_write_is_finished_by_the_next_one(
    tmp_path, applying
):
    """The in-process SQLite target, killed while it waits inside a write: the test holds the
    database's write lock, so apply's next write blocks in ``BEGIN IMMEDIATE`` (the whole
    process with it: SQLite runs on the event loop) until the kill."""
    project = tmp_path / "project"
    records = synthetic.write_project(project, records=200)
    db = tmp_path / "local.db"
    target = f"local:{db}"
    with Served(db) as emulator:  # the same file over HTTP: a new org's own rows
        system = ids(target_rows(emulator))
        emulator.stop()
    plan = plan_json(project, "--target", target)
    assert plan["summary"]["create"] == len(plan["changes"]) == records
    planned = planned_ids(plan)
    apply = [project, "--yes", "--parallelism", "4", "--target", target]

    killed = applying(*apply)
    killed.wait_for_steps(40)
    lock = sqlite3.connect(db, isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")  # apply's next write now waits (busy timeout 5 s)
        killed.wait_until_quiet(0.5)
        printed = killed.kill()
        lock.execute("ROLLBACK")
    finally:
        lock.close()

    assert not SUMMARY.search(printed), "the killed apply finished"
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with Served(db) as emulator:
        there = held(emulator, planned)
        emulator.stop()
    # the writes it reported, and any whose answer it had not yet reported (at most 4)
    assert count(r"^\+ .*: created ", printed) <= there < records
    finished = reconciler("apply", *apply)
    assert finished.returncode == 0, outcome(finished.stdout) + finished.stderr
    assert count(r"^\+ .*: created ", finished.stdout) == records - there
    with Served(db) as emulator:
        assert_holds_exactly(emulator, planned, system)
        emulator.stop()
    assert_settled(project, target, planned)


# --- a saved plan gone stale ------------------------------------------------------------------


def stale_project(folder: Path, *, changed: bool) -> Path:
    """Queues A (queue-0) and B (queue-1), an account, a workstream falling back to A."""
    documents = [
        synthetic.queue(0, priority=7 if changed else 1),
        synthetic.queue(1, description="B, second version" if changed else None),
        synthetic.account(0),
        synthetic.workstream(0, 2, 1, capacity=20 if changed else 10),
    ]
    return synthetic.write(folder, documents)


def test_a_saved_plan_applies_around_a_record_changed_since(tmp_path):
    project = stale_project(tmp_path / "project", changed=False)
    with Served(tmp_path / "org.db") as emulator:
        target = ["--target", emulator.url]
        base = reconciler("apply", project, "--yes", *target)
        assert base.returncode == 0, base.stdout + base.stderr
        stale_project(project, changed=True)
        saved = tmp_path / "p.json"
        planned = reconciler("plan", project, "--out", saved, *target)
        assert planned.returncode == 0, planned.stderr
        plan = json.loads(saved.read_text())
        changes = {c["address"]: c for c in plan["changes"] if c["action"] != "noop"}
        assert {a: c["action"] for a, c in changes.items()} == {
            "Queue/queue-0": "update",
            "Queue/queue-1": "update",
            "Workstream/workstream-0": "update",
        }
        assert "Queue/queue-0" in changes["Workstream/workstream-0"]["depends_on"]
        assert "Queue/queue-0" not in changes["Queue/queue-1"]["depends_on"]
        a, b = changes["Queue/queue-0"]["id"], changes["Queue/queue-1"]["id"]
        workstream = changes["Workstream/workstream-0"]["id"]

        meddled = emulator.patch(f"queues({a})", {"description": "changed out of band"})
        assert meddled.status_code == 204, meddled.text
        applied = reconciler("apply", "--plan", saved, "--yes")

        queue_a = emulator.get(f"queues({a})").json()
        queue_b = emulator.get(f"queues({b})").json()
        stream = emulator.get(f"{k.WORKSTREAM.table.entity_set}({workstream})").json()
    out = applied.stdout
    assert applied.returncode == 1, out + applied.stderr
    assert re.search(r"^! Queue/queue-0: update stale: ", out, re.MULTILINE), out
    assert re.search(r"^! Workstream/workstream-0: skipped: .*Queue/queue-0", out, re.MULTILINE), (
        out
    )
    assert re.search(r"^~ Queue/queue-1: updated ", out, re.MULTILINE), out
    assert "Apply incomplete: 1 applied, 1 stale, 0 failed, 1 skipped" in out
    assert (queue_a["description"], queue_a["msdyn_priority"]) == ("changed out of band", 1)
    assert queue_b["description"] == "B, second version"
    assert stream["msdyn_capacityrequired"] == 10


# --- a flaky service ----------------------------------------------------------------------------

EXAMPLE_SECRETS = {
    "FB_APP_SECRET": "test-app-secret",
    "FB_PAGE_TOKEN_SUPPORT": "test-support-token",
    "FB_PAGE_TOKEN_DEALS": "test-deals-token",
    "GBM_CLIENT_TOKEN": "test-gbm-token",
}


def test_apply_completes_through_injected_429s_and_503s(tmp_path):
    examples = tmp_path / "examples"
    shutil.copytree(ROOT / "examples", examples, ignore=shutil.ignore_patterns("*.json"))
    (examples / "gbm-service-account.json").write_text('{"type": "service_account"}\n')
    env = environ(**EXAMPLE_SECRETS)
    served = ("--fault-rate", "0.2", "--seed", "7", "-v")  # -v: a line per request
    with Served(tmp_path / "org.db", *served) as emulator:
        target = ["--target", emulator.url, "--env", "dev"]
        applied = reconciler("apply", examples, "--yes", *target, env=env, cwd=tmp_path)
        again = reconciler("plan", examples, "--detailed-exitcode", *target, env=env, cwd=tmp_path)
        _, _, log = emulator.stop()
    statuses = Counter(re.findall(r" -> (\d{3}) ", log))
    assert statuses["429"], statuses  # the faults were there
    assert statuses["503"], statuses
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Apply complete: " in applied.stdout
    assert again.returncode == 0, again.stdout + again.stderr
    assert not (tmp_path / ".reconciler").exists()  # --target won over the dev environment's
