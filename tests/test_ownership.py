"""Ownership that never guesses, end to end over HTTP (docs/ownership.md).

Real ``reconciler`` processes against a served emulator: the ledger in the org's notes decides
what ``--prune`` deletes, whatever the records' display names; a rename with
``metadata.previousNames`` keeps the record; ``metadata.id`` adopts a hand-made record (the
``adopt`` action) that is then the project's to prune; two projects (namespaces) in one org
never touch each other's records; an apply killed half-way leaves nothing of ours the ledger
misses; an org applied before ledgers gets one, said once; a ledger that cannot be read stops
the plan.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from apply_helpers import (
    SUMMARY,
    ledger_ids,
    plan_json,
    reconciler,
)
from apply_helpers import (
    applying as applying,  # a fixture, asked for by name
)
from served import Served

NS_A = "9a4f6c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b"
NS_B = "1c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5"
SECRET = {"fromEnv": "BENCH_SECRET"}  # apply_helpers.environ() sets it


def doc(kind: str, name: str, spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "reconciler.omnichannel/v1",
        "kind": kind,
        "metadata": {"name": name, **metadata},
        "spec": spec,
    }


def queue(name: str, display: str, priority: int = 5, **metadata: Any) -> dict[str, Any]:
    return doc("Queue", name, {"displayName": display, "priority": priority}, **metadata)


def fabrikam() -> list[dict[str, Any]]:
    """Queues whose display names do not slug to their names (the ``${ENV_SUFFIX}`` pattern),
    and a Facebook workstream falling back on one of them."""
    return [
        queue("tier1", "Priority care (dev)"),
        queue("tier2", "Cases - Back office", priority=7),
        queue("billing", "Facturatie & betalingen"),
        doc(
            "FacebookAccount",
            "fabrikam-fb",
            {
                "displayName": "Fabrikam on Facebook",
                "applicationId": "100000000000009",
                "applicationSecret": SECRET,
                "pages": [{"name": "fabrikam-nl", "pageId": "3001", "accessToken": SECRET}],
            },
        ),
        doc(
            "Workstream",
            "messenger",
            {
                "displayName": "Messenger (dev)",
                "channel": "facebook",
                "fallbackQueue": "tier2",
                "facebook": {"account": "fabrikam-fb", "page": "fabrikam-nl", "language": "nl-NL"},
            },
        ),
    ]


def write(folder: Path, documents: list[dict[str, Any]], namespace: str = NS_A) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "reconciler.yaml").write_text(yaml.safe_dump({"namespace": namespace}))
    (folder / "project.yaml").write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return folder


def plan(project: Path, emulator: Served, *flags: str) -> dict[str, Any]:
    return plan_json(project, "--target", emulator.url, *flags)


def apply(project: Path, emulator: Served, *flags: str) -> str:
    done = reconciler("apply", project, "--target", emulator.url, "--yes", *flags)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "error" not in done.stderr, done.stderr
    return done.stdout


def actions(planned: dict[str, Any], action: str) -> list[str]:
    return sorted(c["address"] for c in planned["changes"] if c["action"] == action)


def assert_settled(project: Path, emulator: Served) -> None:
    again = reconciler("plan", project, "--target", emulator.url, "--prune", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes." in again.stdout


def queue_rows(emulator: Served) -> dict[str, str]:
    """Omnichannel queues by name → id."""
    rows = emulator.rows("queues", ["queueid", "name", "msdyn_isomnichannelqueue"])
    return {r["name"]: r["queueid"] for r in rows if r["msdyn_isomnichannelqueue"]}


@pytest.fixture
def org(tmp_path: Path):
    with Served(tmp_path / "org.db") as emulator:
        yield emulator


# --- prune by the ledger ----------------------------------------------------------------------


def test_a_removed_manifest_is_pruned_whatever_its_display_name(tmp_path, org):
    project = write(tmp_path / "fabrikam", fabrikam())
    apply(project, org)
    assert_settled(project, org)
    before = queue_rows(org)
    documents = [d for d in fabrikam() if d["metadata"]["name"] != "billing"]
    write(project, documents)

    without = plan(project, org)
    assert actions(without, "delete") == []
    assert any(w["code"] == "not-in-manifests" for w in without["warnings"])
    pruned = plan(project, org, "--prune")
    (delete,) = [c for c in pruned["changes"] if c["action"] == "delete"]
    assert (delete["address"], delete["id"]) == ("Queue/billing", before["Facturatie & betalingen"])
    assert {key: n for key, n in pruned["summary"].items() if n and key != "noop"} == {"delete": 1}

    apply(project, org, "--prune")
    assert set(queue_rows(org)) == set(before) - {"Facturatie & betalingen"}
    assert before["Facturatie & betalingen"] not in ledger_ids(org)
    assert_settled(project, org)


# --- rename -----------------------------------------------------------------------------------


def renamed(documents: list[dict[str, Any]], *, previous: bool) -> list[dict[str, Any]]:
    """``tier2`` is now ``second-tier`` (and the workstream refers to it so)."""
    out = []
    for document in documents:
        document = json.loads(json.dumps(document))
        if document["metadata"]["name"] == "tier2":
            document["metadata"]["name"] = "second-tier"
            if previous:
                document["metadata"]["previousNames"] = ["tier2"]
        if document["kind"] == "Workstream":
            document["spec"]["fallbackQueue"] = "second-tier"
        out.append(document)
    return out


def test_a_rename_with_previous_names_keeps_the_record_and_its_id(tmp_path, org):
    project = write(tmp_path / "fabrikam", fabrikam())
    apply(project, org)
    tier2 = queue_rows(org)["Cases - Back office"]

    write(project, renamed(fabrikam(), previous=True))
    planned = plan(project, org, "--prune")
    assert {key: n for key, n in planned["summary"].items() if n and key != "noop"} == {}
    change = next(c for c in planned["changes"] if c["address"] == "Queue/second-tier")
    assert (change["action"], change["id"], change["renamed_from"]) == (
        "noop",
        tier2,
        "Queue/tier2",
    )
    text = reconciler("plan", project, "--target", org.url).stdout
    assert "Queue/second-tier: renamed from Queue/tier2" in text
    assert planned["ledger"]["pending"] == 1  # the ledger learns the new address

    apply(project, org)
    assert queue_rows(org)["Cases - Back office"] == tier2
    # The ledger has the new address: previousNames can go, and nothing changes.
    write(project, renamed(fabrikam(), previous=False))
    assert_settled(project, org)


def test_a_rename_without_previous_names_is_called_ours_not_someone_elses(tmp_path, org):
    project = write(tmp_path / "fabrikam", fabrikam())
    apply(project, org)
    write(project, renamed(fabrikam(), previous=False))
    # The renamed queue keeps its display name: ours, under its old address.
    done = reconciler("plan", project, "--target", org.url, "--format", "json")
    assert done.returncode == 3, done.stderr  # a conflict: apply would refuse
    planned = json.loads(done.stdout)
    (conflict,) = [c for c in planned["changes"] if c["action"] == "conflict"]
    assert conflict["address"] == "Queue/second-tier"
    assert "is ours, under Queue/tier2" in conflict["reason"]
    assert "metadata.previousNames: [tier2]" in conflict["reason"]
    assert "not created by this project" not in conflict["reason"]
    # With --prune the old one goes and a new one is made, and the plan says how to keep it.
    pruned = plan(project, org, "--prune")
    assert actions(pruned, "delete") == ["Queue/tier2"]
    assert actions(pruned, "create") == ["Queue/second-tier"]
    assert any(w["code"] == "rename-hint" for w in pruned["warnings"])


# --- adoption ---------------------------------------------------------------------------------


def hand_made_queue(emulator: Served, name: str) -> str:
    made = emulator.post(
        "queues",
        {"name": name, "msdyn_isomnichannelqueue": True, "msdyn_queuetype": 192350000},
        Prefer="return=representation",
    )
    assert made.status_code == 201, made.text
    return str(made.json()["queueid"])


def test_a_hand_made_queue_is_adopted_then_the_projects_to_prune(tmp_path, org):
    made = hand_made_queue(org, "Escalations (made by hand)")
    documents = [
        *fabrikam(),
        queue("escalations", "Escalations (made by hand)", priority=3, id=made),
    ]
    project = write(tmp_path / "fabrikam", documents)
    apply(project, org)  # the rest is created; the hand-made queue is adopted
    write(project, [*fabrikam(), queue("escalations", "Escalations", priority=3, id=made)])
    assert plan(project, org)["summary"]["adopt"] == 0  # adopted once, by the first apply

    # A second hand-made queue, adopted in a plan of its own.
    other = hand_made_queue(org, "Returns desk")
    write(project, [*fabrikam(), queue("returns", "Returns desk", id=other)])
    planned = plan(project, org)
    (adopt,) = [c for c in planned["changes"] if c["action"] == "adopt"]
    assert (adopt["address"], adopt["id"], adopt["current_name"]) == (
        "Queue/returns",
        other,
        "Returns desk",
    )
    assert planned["summary"]["adopt"] == 1
    text = reconciler("plan", project, "--target", org.url).stdout
    assert f'adopts Queue "Returns desk" (id {other}), not created by this project' in text
    assert "1 to adopt." in text
    markdown = reconciler("plan", project, "--target", org.url, "--format", "markdown").stdout
    assert "| adopt | 1 |" in markdown
    assert "#### Adopted" in markdown
    assert f"`{other}`" in markdown
    apply(project, org)
    assert other in ledger_ids(org)

    # Its manifest removed: --prune deletes it, saying it was not created by this project.
    write(project, fabrikam())
    pruned = plan(project, org, "--prune")
    assert actions(pruned, "delete") == ["Queue/escalations", "Queue/returns"]
    delete = next(c for c in pruned["changes"] if c["address"] == "Queue/returns")
    assert (delete["id"], delete["adopted"], delete["current_name"]) == (
        other,
        True,
        "Returns desk",
    )
    markdown = reconciler(
        "plan", project, "--target", org.url, "--prune", "--format", "markdown"
    ).stdout
    destructive = markdown.split("#### ⚠️ Destructive changes", 1)[1].split("####", 1)[0]
    assert "not created by this project" in destructive
    assert "Returns desk" in destructive
    apply(project, org, "--prune")
    assert "Returns desk" not in queue_rows(org)
    assert "Escalations" not in queue_rows(org)  # adopted by the first apply, pruned too


def test_an_adoption_that_did_not_go_through_is_not_listed_and_shows_again(tmp_path, org):
    """The adopted row changes between plan and apply: its step is stale, the ledger does not
    list it, and the next plan shows the adoption again (never as a plain update)."""
    made = hand_made_queue(org, "Returns desk")
    project = write(tmp_path / "fabrikam", [*fabrikam(), queue("returns", "Returns", id=made)])
    saved = tmp_path / "plan.json"
    done = reconciler("plan", project, "--target", org.url, "--out", saved)
    assert done.returncode == 0, done.stderr
    edited = org.patch(f"queues({made})", {"description": "changed by hand"}, **{"If-Match": "*"})
    assert edited.status_code == 204, edited.text
    applied = reconciler("apply", "--plan", saved, "--target", org.url, "--yes")
    assert applied.returncode == 1, applied.stdout + applied.stderr
    assert "1 stale" in applied.stdout, applied.stdout
    listed = ledger_ids(org)
    assert made not in listed
    assert set(queue_rows(org).values()) - {made} <= listed | set(system_queues(org))
    again = plan(project, org)
    (adopt,) = [c for c in again["changes"] if c["address"] == "Queue/returns"]
    assert adopt["action"] == "adopt"
    apply(project, org)
    assert made in ledger_ids(org)


def system_queues(org: Served) -> list[str]:
    rows = org.rows(
        "queues", ["queueid", "name", "msdyn_isomnichannelqueue", "msdyn_isdefaultqueue"]
    )
    return [r["queueid"] for r in rows if r.get("msdyn_isdefaultqueue")]


def test_ensure_absent_on_someone_elses_id_names_the_real_record(tmp_path, org):
    theirs = hand_made_queue(org, "Payroll (HR team)")
    project = write(
        tmp_path / "p",
        [
            queue("tier1", "Tier 1"),
            {
                **queue("cleanup", "Old queue"),
                "metadata": {"name": "cleanup", "id": theirs, "ensure": "absent"},
            },
        ],
    )
    planned = plan(project, org)
    (delete,) = [c for c in planned["changes"] if c["action"] == "delete"]
    assert (delete["current_name"], delete["adopted"]) == ("Payroll (HR team)", True)
    assert delete["reason"] == "ensure: absent"  # the renders say whose record it is:
    text = reconciler("plan", project, "--target", org.url).stdout
    assert f'! deletes Queue "Payroll (HR team)" (id {theirs}), not created by this project' in text


# --- two projects in one org ------------------------------------------------------------------


def test_two_namespaces_never_prune_each_others_records(tmp_path, org):
    a = write(tmp_path / "a", [queue("intake", "Intake (A)"), queue("shared", "Shared A")])
    b_documents = [queue("intake", "Intake (B)"), queue("returns", "Returns (B)")]
    b = write(tmp_path / "b", b_documents, namespace=NS_B)
    apply(a, org)
    apply(b, org)
    for project in (a, b):
        planned = plan(project, org, "--prune")
        assert actions(planned, "delete") == []
        assert planned["unmanaged"] == {"Queue": 2}
    write(b, b_documents[:1], namespace=NS_B)
    pruned = plan(b, org, "--prune")
    assert actions(pruned, "delete") == ["Queue/returns"]
    apply(b, org, "--prune")
    assert set(queue_rows(org)) >= {"Intake (A)", "Shared A", "Intake (B)"}
    assert "Returns (B)" not in queue_rows(org)
    assert_settled(a, org)
    assert_settled(b, org)


# --- killed half-way --------------------------------------------------------------------------


def synthetic_queues(count: int) -> list[dict[str, Any]]:
    return [
        queue(f"q-{i:04d}", f"Synthetic queue {i:04d}", priority=1 + i % 9) for i in range(count)
    ]


def test_an_apply_killed_after_two_seconds_leaves_nothing_the_ledger_misses(tmp_path, applying):
    project = write(tmp_path / "synthetic", synthetic_queues(200))
    with Served(tmp_path / "org.db", "--latency-ms", "30") as emulator:
        system = set(queue_rows(emulator).values())  # the org's default queues
        killed = applying(project, "--target", emulator.url, "--yes", "--parallelism", "2")
        time.sleep(2.0)
        printed = killed.kill()
        time.sleep(0.2)  # the requests in flight when it died: the emulator finishes them
        assert not SUMMARY.search(printed), "the apply finished within 2 s: slow it down"
        made = set(queue_rows(emulator).values()) - system
        assert 0 < len(made) < 200
        assert made <= ledger_ids(emulator)

        apply(project, emulator)
        assert len(set(queue_rows(emulator).values()) - system) == 200
        write(project, synthetic_queues(10))
        pruned = plan(project, emulator, "--prune")
        assert pruned["summary"]["delete"] == 190
        assert pruned["managed"] == 200
        assert all(c["address"].startswith("Queue/q-0") for c in pruned["changes"])
        assert actions(pruned, "delete") == [f"Queue/q-{i:04d}" for i in range(10, 200)]


# --- an org applied before ledgers ------------------------------------------------------------


def delete_ledger(emulator: Served) -> int:
    notes = emulator.rows("annotations", ["annotationid", "subject"])
    mine = [n for n in notes if str(n["subject"]).startswith("reconciler ledger ")]
    for note in mine:
        assert emulator.delete(f"annotations({note['annotationid']})").status_code == 204
    return len(mine)


def test_an_org_without_a_ledger_gets_one_from_the_records_ids_and_says_so_once(tmp_path, org):
    project = write(tmp_path / "fabrikam", fabrikam())
    apply(project, org)
    assert delete_ledger(org) == 1  # as if applied by a version without ledgers
    planned = plan(project, org)
    (note,) = [w for w in planned["warnings"] if w["code"] == "ledger-new"]
    # 3 queues, the account and its page, the workstream, its contract and routing
    assert "apply writes one listing the 8 records" in note["message"]
    assert planned["summary"]["create"] == planned["summary"]["update"] == 0
    assert planned["ledger"]["found"] is False
    out = apply(project, org)
    assert len(ledger_ids(org)) == 8, out
    # No record changed: no prompt, and apply says what it wrote.
    assert "Apply complete: the ledger is up to date (1 ledger note write, " in out, out
    again = plan(project, org)
    assert [w for w in again["warnings"] if w["code"] == "ledger-new"] == []
    assert again["ledger"]["found"] is True
    assert again["ledger"]["pending"] == 0


def test_a_ledger_that_cannot_be_read_stops_the_plan_and_prunes_nothing(tmp_path, org):
    project = write(tmp_path / "fabrikam", fabrikam())
    apply(project, org)
    (note,) = [
        n
        for n in org.rows("annotations", ["annotationid", "subject"])
        if str(n["subject"]).startswith("reconciler ledger ")
    ]
    edited = org.patch(
        f"annotations({note['annotationid']})", {"notetext": "edited by hand"}, **{"If-Match": "*"}
    )
    assert edited.status_code == 204, edited.text
    write(project, fabrikam()[:1])
    done = reconciler("plan", project, "--target", org.url, "--prune")
    assert done.returncode == 1
    assert "error: the ledger note" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_the_ledger_is_a_note_an_admin_can_read(tmp_path, org):
    project = write(tmp_path / "fabrikam", fabrikam())
    apply(project, org)
    (note,) = [
        n
        for n in org.rows("annotations", ["subject", "notetext", "isdocument"])
        if str(n["subject"]).startswith("reconciler ledger ")
    ]
    assert note["subject"].startswith(f"reconciler ledger {NS_A} page 0 ")
    assert note["isdocument"] is False
    lines = note["notetext"].splitlines()
    assert lines[0] == f"reconciler-ledger/1 namespace={NS_A} page=0 pages=1"
    assert "Queue/tier2 queue " in note["notetext"]
    assert all(line.endswith(" created") for line in lines[1:])
    assert uuid.UUID(lines[1].split()[2])
