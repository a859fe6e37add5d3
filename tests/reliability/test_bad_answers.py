"""``plan``, ``apply`` and ``export`` against answers that are not the Web API's.

- An emulator that garbles every answer (truncated JSON, HTML error pages, JSON labelled as
  text, odd 500s): each command exits 1 with an ``error:`` line naming what came back, and no
  traceback, on stdout or stderr.
- An emulator that garbles a third of the answers to writes (and carries the write out, or not,
  at random): apply never reports a step as applied unless its record is really there, with the
  planned values (a fresh plan finds nothing left to do for what the step wrote); applying
  again finishes the job.

The runs mostly wait, so the module runs them all at once, once (``runs``).
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
from fault_support import Emulator, finish, org_labels, org_state, reconciler, start

from reconciler.apply.applier import load_plan
from reconciler.plan.stages import Op, build_steps

COMMANDS = ("plan", "apply", "export")
PROBLEMS = {  # what the error line says came back
    "truncated": "invalid JSON in a 200 answer",
    "html": "text/html",
    "content-type": "expected JSON, got text/",
    "odd-500": "500 Internal Server Error",
}
GARBLED_WRITES = (
    "--fault-rate", "0.3", "--fault-on", "writes",
    "--fault-kinds", ",".join(PROBLEMS), "--seed", "6",
)  # fmt: skip
STEP = re.compile(
    r"^(?P<symbol>[+~-]) (?P<address>.+): (?P<detail>created|updated|linked|already there; "
    r"updated|already as planned|deleted|already gone) \(\d+\.\d\d s\)$"
)
OPS = {"+": Op.CREATE, "~": Op.UPDATE, "-": Op.DELETE}


def every_answer_bad(project: Path, folder: Path, kind: str) -> dict[str, Any]:
    """``plan``, ``apply`` and ``export`` at once against an emulator garbling every answer."""
    with Emulator(folder / f"{kind}.db", "--fault-rate", "1", "--fault-kinds", kind) as emulator:
        target = ("--target", emulator.url)
        running = {
            "plan": start("plan", project, *target),
            "apply": start("apply", project, "--yes", *target),
            "export": start("export", "--out", folder / f"{kind}-export", *target),
        }
        return {command: finish(process) for command, process in running.items()}


@dataclass
class Garbled:
    steps: list[Any]
    applied: subprocess.CompletedProcess[str]
    after: dict[str, Any]
    """``plan --format json`` of the target after the garbled apply (read without faults)."""
    again: subprocess.CompletedProcess[str]
    """Applying again, fault-free."""
    settled: subprocess.CompletedProcess[str]
    """``plan --detailed-exitcode`` after that."""
    ids: set[str]
    """Every record id the target holds after the garbled apply."""
    log: str


def garbled_writes(project: Path, folder: Path) -> Garbled:
    db = folder / "garbled.db"
    saved = folder / "plan.json"
    with Emulator(db, "--latency-ms", "1", *GARBLED_WRITES) as emulator:
        labels = org_labels(emulator.org)
        made = reconciler("plan", project, "--target", emulator.url, "--out", saved)
        assert made.returncode == 0, made.stderr
        applied = reconciler("apply", "--plan", saved, "--yes", "--parallelism", "8")
        log = emulator.stop()
    state = org_state(emulator.org, labels)
    local = ("--target", f"local:{db}")
    after = reconciler("plan", project, *local, "--format", "json")
    assert after.returncode == 0, after.stderr
    again = reconciler("apply", project, *local, "--yes", "--parallelism", "8")
    settled = reconciler("plan", project, *local, "--detailed-exitcode")
    ids = {str(value).lower() for rows in state.values() for row in rows for value in row.values()}
    steps = build_steps(load_plan(saved))
    return Garbled(steps, applied, json.loads(after.stdout), again, settled, ids, log)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("bad-answers")
    project = folder / "project"
    assert synthetic.write_project(project, records=200) >= 200
    jobs: dict[str, Callable[[], Any]] = {"garbled-writes": lambda: garbled_writes(project, folder)}
    for kind in PROBLEMS:
        jobs[kind] = lambda kind=kind: every_answer_bad(project, folder, kind)
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("kind", PROBLEMS)
def test_every_answer_bad_is_exit_1_with_an_error_line_naming_it(runs, kind, command):
    done = runs[kind][command]
    output = done.stdout + done.stderr
    assert done.returncode == 1, output[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr[-3000:]
    assert PROBLEMS[kind] in errors[0], errors[0]
    assert len(errors[0]) < 500
    assert "Traceback" not in output
    assert "unexpected internal error" not in output
    assert synthetic.environ()[synthetic.SECRET_VARIABLE] not in output
    assert "\x1b" not in output  # a terminal escape from the server is shown escaped
    assert "Apply complete" not in done.stdout
    assert "Exported " not in done.stdout


def test_garbled_write_answers_never_report_a_step_applied_that_is_not_there(runs):
    run: Garbled = runs["garbled-writes"]
    out = run.applied.stdout
    assert "Traceback" not in out + run.applied.stderr
    assert re.search(r"PATCH \S+ -> 500 ", run.log)  # final: the step failed
    assert re.search(r"PATCH \S+ -> (?:200|502) ", run.log)  # the outcome unknown: settled
    applied = [m for m in map(STEP.match, out.splitlines()) if m]
    failed = re.findall(r"^! .*: \w+ failed: ", out, re.MULTILINE)
    assert applied, out[-3000:]
    assert failed, out[-3000:]  # some garbled answers (the 500s) are final
    assert run.applied.returncode == 1
    assert re.search(r"Apply incomplete: \d+ applied, 0 stale, \d+ failed", out)

    changes = {c["address"]: c for c in run.after["changes"]}
    steps = {(s.op, s.address): s for s in run.steps}
    for match in applied:
        address = match["address"]
        op = Op.LINK if match["detail"] == "linked" else OPS[match["symbol"]]
        step = steps[op, address]
        assert step.change.id.lower() in run.ids, f"{address} reported applied, not there"
        change = changes[address]
        assert change["action"] != "create", f"{address}: {match['detail']}, but not there"
        left = [f["path"] for f in change["fields"] if _covers(step.paths, f["path"])]
        assert left == [], f"{address} reported {match['detail']}, but {left} differ"


def test_applying_again_after_garbled_answers_finishes_the_job(runs):
    run: Garbled = runs["garbled-writes"]
    assert run.again.returncode == 0, run.again.stdout[-3000:] + run.again.stderr
    assert "Apply complete: " in run.again.stdout
    assert run.settled.returncode == 0, run.settled.stdout[-3000:] + run.settled.stderr


def _covers(paths: tuple[str, ...], path: str) -> bool:
    """``path`` (a field of a plan's change) is one of ``paths``, inside one, or holds one."""
    return any(
        path == p or path.startswith((f"{p}.", f"{p}[")) or p.startswith((f"{path}.", f"{path}["))
        for p in paths
    )
