"""``reconciler apply`` through injected faults ends exactly where a fault-free apply ends.

A synthetic project of about 200 records is applied to a served emulator that throttles (a
service-protection window of 60 requests a second, and injected 429s), answers 503, drops
connections before and after writes, or answers late. Each apply must complete (exit 0); the
target then holds exactly what a fault-free apply of the same project makes (every column of
every table, less what the emulator stamps itself: see ``fault_support.org_state``), and a
following ``plan --detailed-exitcode`` finds nothing to change.

A throttle long enough to notice is announced on stderr, one line, never on stdout.

The runs mostly wait (on Retry-After, backoff, latency), so the module runs them all at once,
once (``runs``); each test then checks one of them.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import synthetic
from fault_support import Emulator, Rows, differences, org_labels, org_state, reconciler

QUICK = ("--latency-ms", "1")
APPLY = ("--yes", "--parallelism", "8")
SCENARIOS = {
    "429-storm": (
        "--max-requests", "60", "--window-seconds", "1",  # Dataverse's limit, 300 times faster
        "--fault-rate", "0.05", "--fault-kinds", "429",
    ),
    "503": ("--fault-rate", "0.1", "--fault-kinds", "503"),
    "drops": ("--fault-rate", "0.1", "--fault-kinds", "drop,drop-after"),
    "slow": ("--fault-rate", "0.1", "--fault-kinds", "slow", "--slow-ms", "300"),
}  # fmt: skip
SIGNS = {  # what the emulator's request log shows of each
    "429-storm": r" -> 429 ",
    "503": r" -> 503 ",
    "drops": r" -> dropped ",
    "slow": r" -> \d{3} \((?:[3-9]\d\d|\d{4,})\.\d ms\)",
}
THROTTLE_LINE = (
    "warning: the service is throttling requests (429, service protection limits): "
    "waiting 3 s before going on"
)


@dataclass
class Run:
    applied: subprocess.CompletedProcess[str]
    again: subprocess.CompletedProcess[str]
    """``plan --detailed-exitcode`` after it, against the same database (in-process)."""
    state: Rows
    log: str


def apply_run(project: Path, db: Path, *flags: str) -> Run:
    with Emulator(db, *flags) as emulator:
        labels = org_labels(emulator.org)
        applied = reconciler("apply", project, "--target", emulator.url, *APPLY)
        log = emulator.stop()
    again = reconciler("plan", project, "--target", f"local:{db}", "--detailed-exitcode")
    return Run(applied, again, org_state(emulator.org, labels), log)


def throttle_run(folder: Path) -> tuple[subprocess.CompletedProcess[str], str]:
    """``plan --format json`` of a small project whose first requests are throttled for 3 s
    (all at once: one line)."""
    project = folder / "small"
    synthetic.write_project(project, documents=4)
    flags = ("--fault-rate", "0.1", "--fault-kinds", "429", "--fault-retry-after", "3")
    # A seed whose throttled requests all come in the first stretch (with the plan's reads).
    with Emulator(folder / "throttled.db", *flags, "--seed", "3") as emulator:
        planned = reconciler("plan", project, "--target", emulator.url, "--format", "json")
        return planned, emulator.stop()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("faults")
    project = folder / "project"
    assert synthetic.write_project(project, records=200) >= 200
    jobs: dict[str, Callable[[], Any]] = {
        "fault-free": lambda: apply_run(project, folder / "clean.db", *QUICK),
        "throttle-notice": lambda: throttle_run(folder),
    }
    for name, flags in SCENARIOS.items():
        db = folder / f"{name}.db"
        jobs[name] = lambda db=db, flags=flags: apply_run(
            project, db, *QUICK, *flags, "--seed", "7"
        )
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


def assert_clean(output: str) -> None:
    assert "Traceback" not in output
    assert "unexpected internal error" not in output


def test_a_fault_free_apply_completes(runs):
    run: Run = runs["fault-free"]
    assert run.applied.returncode == 0, run.applied.stdout[-3000:] + run.applied.stderr
    assert run.applied.stderr == ""
    assert run.again.returncode == 0, run.again.stdout[-3000:] + run.again.stderr
    assert sum(len(rows) for rows in run.state.values()) > 200


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_apply_through_faults_ends_as_a_fault_free_apply(scenario, runs):
    run: Run = runs[scenario]
    assert re.search(SIGNS[scenario], run.log), f"no {scenario} in the log: {run.log[-2000:]!r}"
    assert run.applied.returncode == 0, run.applied.stdout[-3000:] + run.applied.stderr
    assert "Apply complete: " in run.applied.stdout
    assert_clean(run.applied.stdout + run.applied.stderr)
    assert all(line.startswith("warning: ") for line in run.applied.stderr.splitlines())
    assert run.again.returncode == 0, run.again.stdout[-3000:] + run.again.stderr
    assert differences(runs["fault-free"].state, run.state) == []
    assert run.state == runs["fault-free"].state


def test_a_long_throttle_is_one_line_on_stderr_and_stdout_stays_json(runs):
    planned, log = runs["throttle-notice"]
    assert re.search(r" -> 429 ", log)
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)  # nothing but the plan on stdout
    assert plan["summary"]["create"] > 0
    assert planned.stderr.splitlines() == [THROTTLE_LINE]
