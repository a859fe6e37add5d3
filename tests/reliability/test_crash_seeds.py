"""``reconciler apply`` killed (SIGKILL) at points a seeded RNG chooses, then run again.

Each case is a seed, a way to apply (``apply PATHS`` or ``apply --plan``) and how many applies
are killed in a row (one or two) before one is let finish. The seed chooses, for each killed
apply, its parallelism and where it dies:

- ``steps``: after k printed steps, k at most 60 % of the steps it announced;
- ``delay``: a random time after it announced its steps (still by 60 % of them at the latest);
- ``early``: a random time after it started, at the latest when it announces its steps (while
  it reads the target, or shows the plan).

After every kill the target holds only planned records, none twice. The apply that finishes
(at another seeded parallelism) exits 0, creates exactly what is missing, and leaves every
planned record present once and nothing else but the org's own rows; a plan then shows no
change. A served emulator with latency stands in for Dataverse.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import synthetic
from apply_helpers import (
    SHARED_NAMES,
    SUMMARY,
    TABLES,
    Applying,
    assert_holds_exactly,
    assert_settled,
    count,
    ids,
    outcome,
    planned_ids,
    reconciler,
    target_rows,
)
from apply_helpers import (
    applying as applying,  # a fixture, asked for by name
)
from served import Served

RECORDS = 100
LATENCY_MS = 20
PARALLELISM = (2, 3, 4, 8, 16)
FINAL_PARALLELISM = (4, 8, 16)  # at 2, finishing a saved plan mostly there already took 9 s
LATEST = 0.6
"""The share of its steps a killed apply may print at most: it must die before it finishes."""
# (seed, how apply is given its changes, applies killed in a row). What each seed draws:
#   5: delay 0.37 s at parallelism 16; finished at 4
#   9: early 0.31 s at 4, then 19 % into the steps at 2; finished at 8
#   12: early 0.13 s at 16, then delay 0.07 s at 2; finished at 8
#   37: 94 % of the way to the latest kill point at 16; finished at 4
CASES = [
    (5, "manifests", 1),
    (9, "saved-plan", 2),
    (12, "manifests", 2),
    (37, "saved-plan", 1),
]


@dataclass
class Kill:
    style: str
    parallelism: int
    at: float  # steps (style "steps") or seconds


def choose_kill(rng: random.Random) -> Kill:
    style = rng.choice(["steps", "steps", "delay", "early"])
    at = rng.random() if style == "steps" else rng.uniform(0.0, 0.5)
    return Kill(style, rng.choice(PARALLELISM), at)


def kill_at(process: Applying, kill: Kill) -> str:
    """Kill ``process`` where ``kill`` says; everything it printed."""
    if kill.style == "early":
        deadline = time.monotonic() + kill.at
        while process.total is None and (left := deadline - time.monotonic()) > 0:
            process.read_line(left)
    else:
        while process.total is None:
            assert process.read_line() is not None, "apply went quiet"
        latest = max(1, int(LATEST * process.total))
        if kill.style == "steps":
            process.wait_for_steps(max(1, round(kill.at * latest)))
        else:
            deadline = time.monotonic() + kill.at
            while process.steps < latest and (left := deadline - time.monotonic()) > 0:
                process.read_line(left)
    printed = process.kill()
    assert not SUMMARY.search(printed), f"the killed apply finished ({kill})"
    return printed


def assert_holds_only_planned(
    emulator: Served, planned: dict[str, set[str]], system: dict[str, set[str]]
) -> int:
    """The target holds the org's rows and some planned records, each once: how many."""
    rows = target_rows(emulator)
    found = ids(rows)
    for entity_set, table_rows in rows.items():
        names = Counter(row[TABLES[entity_set].primary_name] for row in table_rows)
        if entity_set not in SHARED_NAMES:
            assert [name for name, times in names.items() if times > 1] == [], entity_set
        assert len(table_rows) == len(found[entity_set]), entity_set
        assert found[entity_set] - system[entity_set] <= planned[entity_set], entity_set
        assert system[entity_set] <= found[entity_set], entity_set
    return sum(len(found[entity_set] & wanted) for entity_set, wanted in planned.items())


def settled(emulator: Served, planned: dict[str, set[str]], system: dict[str, set[str]]) -> int:
    """``assert_holds_only_planned`` once the requests in flight when apply died are done (the
    emulator finishes them): two reads 0.1 s apart agree."""
    time.sleep(0.1)
    there = assert_holds_only_planned(emulator, planned, system)
    for _ in range(50):
        time.sleep(0.1)
        there, before = assert_holds_only_planned(emulator, planned, system), there
        if there == before:
            return there
    raise AssertionError("the target kept changing after apply was killed")


@pytest.mark.parametrize(
    ("seed", "given", "kills"),
    CASES,
    ids=[f"seed{seed}-{given}-killed{kills}x" for seed, given, kills in CASES],
)
def test_applies_killed_at_seeded_points_are_finished_by_the_next_one(
    tmp_path: Path, applying, seed: int, given: str, kills: int
) -> None:
    rng = random.Random(seed)
    project = tmp_path / "project"
    records = synthetic.write_project(project, records=RECORDS)
    with Served(tmp_path / "org.db", "--latency-ms", str(LATENCY_MS)) as emulator:
        system = ids(target_rows(emulator))
        saved = tmp_path / "plan.json"
        made = reconciler("plan", project, "--target", emulator.url, "--out", saved)
        assert made.returncode == 0, made.stderr
        plan = json.loads(saved.read_text())
        assert plan["summary"]["create"] == len(plan["changes"]) == records
        planned = planned_ids(plan)
        what = ["--plan", saved] if given == "saved-plan" else [project, "--target", emulator.url]

        there = 0
        for _ in range(kills):
            kill = choose_kill(rng)
            process = applying(*what, "--yes", "--parallelism", str(kill.parallelism))
            printed = kill_at(process, kill)
            before, there = there, settled(emulator, planned, system)
            assert before + count(r"^\+ .*: created ", printed) <= there <= records, kill

        parallelism = rng.choice(FINAL_PARALLELISM)
        finished = reconciler("apply", *what, "--yes", "--parallelism", str(parallelism))
        assert finished.returncode == 0, outcome(finished.stdout) + finished.stderr
        out = finished.stdout
        assert "Apply complete: " in out
        assert count(r"^\+ .*: created ", out) == records - there
        # a saved plan creates everything again: what is there already is updated as planned
        already = count(r"^\+ .*: already there; updated ", out)
        assert already == (there if given == "saved-plan" else 0)
        assert_holds_exactly(emulator, planned, system)
        assert_settled(project, emulator.url, planned)
