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
import shutil
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest
import synthetic
from apply_helpers import (
    SUMMARY,
    assert_holds_exactly,
    assert_settled,
    count,
    environ,
    held,
    ids,
    outcome,
    plan_json,
    planned_ids,
    reconciler,
    target_rows,
)
from apply_helpers import (
    applying as applying,  # a fixture, asked for by name
)
from served import Served

from reconciler.mapping import kinds as k

ROOT = Path(__file__).resolve().parent.parent

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
