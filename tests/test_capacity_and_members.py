"""Capacity profiles (reconciler/kinds/capacity.py) and queue members (the ``members`` field of
reconciler/kinds/queue.py), against a served emulator: the issue's acceptance, end to end.

A chat workstream counting its chats against a profile: the profile, the workstream's profile
row and its profile-based capacity are created; a re-plan is empty; a change of the work item
limit is one update of the profile; a change of the reset frequency replaces the profile (and
the row that names it); switching to units is an update, the old row going only with --prune.

A queue with two users created over HTTP as members: both are associated; a member dropped
from the list stays without --prune and goes with it; a sign-in name no user has is a plan
error naming it. Export of the org plans to no change.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from served import Served

from reconciler.cli import main

NAMESPACE = "2c7e9b14-5a3d-4f8e-b61c-9d0a2e4f7b35"
PROFILE_BASED, UNIT_BASED = 192360000, 192350000  # msdyn_capacityformat (DEV-WS)
IMMEDIATE, DAILY = 192350000, 192350001  # msdyn_resetduration (REF-CP)

PROJECT = """\
apiVersion: reconciler.omnichannel/v1
kind: Queue
metadata:
  name: web-support
spec:
  displayName: Web support
  members: [ada@contoso.com, grace@contoso.com]
---
apiVersion: reconciler.omnichannel/v1
kind: CapacityProfile
metadata:
  name: chat-profile
spec:
  displayName: Chat profile
  defaultMaxUnits: 3
---
apiVersion: reconciler.omnichannel/v1
kind: Workstream
metadata:
  name: web-chat
spec:
  displayName: Web chat
  channel: chat
  fallbackQueue: web-support
  distribution:
    capacity: {profiles: [chat-profile]}
  chat:
    title: Let's chat
    language: en-US
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def changes(out: str) -> list[tuple[str, str, list[str]]]:
    return [
        (c["action"], c["address"], [f["path"] for f in c["fields"]])
        for c in json.loads(out)["changes"]
        if c["action"] != "noop"
    ]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "reconciler.yaml").write_text(f"namespace: {NAMESPACE}\n")
    (folder / "support.yaml").write_text(PROJECT)
    monkeypatch.chdir(tmp_path)
    return folder


def add_user(emulator: Served, sign_in: str, first: str, last: str) -> str:
    """A user, created over HTTP as an org's users come from Entra ID (SYSUSER)."""
    answer = emulator.post(
        "systemusers", {"domainname": sign_in, "firstname": first, "lastname": last}
    )
    assert answer.status_code == 204, answer.text
    (user,) = [u for u in emulator.rows("systemusers") if u["domainname"] == sign_in]
    return str(user["systemuserid"])


def queue_id(emulator: Served, queue: str = "Web support") -> str:
    (row,) = [q for q in emulator.rows("queues") if q["name"] == queue]
    return str(row["queueid"])


def members(emulator: Served, queue: str = "Web support") -> list[str]:
    """The sign-in names a queue's queuemembership_association lists."""
    answer = emulator.get(
        "queues",
        **{
            "$select": "name",
            "$filter": f"name eq '{queue}'",
            "$expand": "queuemembership_association($select=domainname)",
        },
    )
    (queue,) = answer.json()["value"]
    return sorted(user["domainname"] for user in queue["queuemembership_association"])


def test_profiles_and_members_are_applied_planned_again_and_exported(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = project / "support.yaml"
    with Served(tmp_path / "org.db") as emulator:
        target = ("--target", emulator.url)
        ada = add_user(emulator, "ada@contoso.com", "Ada", "Lovelace")
        grace = add_user(emulator, "grace@contoso.com", "Grace", "Hopper")

        code, out, err = run(capsys, "plan", str(project), *target, "--format", "json")
        assert code == 0, out + err
        planned = {c["address"]: c for c in json.loads(out)["changes"]}
        assert [f["path"] for f in planned["Queue/web-support"]["fields"]][-2:] == [
            'members["ada@contoso.com"]',
            'members["grace@contoso.com"]',
        ]
        assert planned["Workstream/web-chat/capacity:chat-profile"]["action"] == "create"

        code, out, err = run(capsys, "apply", str(project), *target, "--yes", "--no-color")
        assert (code, err) == (0, ""), out + err
        assert "members: 2 added, 0 removed" in out

        # The profile, the workstream's row for it, its profile-based capacity.
        (profile,) = emulator.rows("msdyn_capacityprofiles")
        assert profile["msdyn_name"] == "Chat profile"
        assert profile["msdyn_defaultmaxunits"] == 3
        assert profile["msdyn_blockassignment"] is False
        assert profile["msdyn_resetduration"] == IMMEDIATE
        assert profile["msdyn_uniquename"].startswith("rcn_")
        (workstream,) = emulator.rows("msdyn_liveworkstreams")
        assert workstream["msdyn_capacityformat"] == PROFILE_BASED
        (row,) = emulator.rows("msdyn_liveworkstreamcapacityprofiles")
        assert row["_msdyn_workstream_id_value"] == workstream["msdyn_liveworkstreamid"]
        assert row["_msdyn_capacityprofile_id_value"] == profile["msdyn_capacityprofileid"]
        assert row["msdyn_name"] == f"Chat profile-{profile['msdyn_capacityprofileid']}"
        # Both users are members, through the queue's N:N relationship.
        assert members(emulator) == ["ada@contoso.com", "grace@contoso.com"]
        answer = emulator.get(
            f"systemusers({ada})",
            **{"$select": "fullname", "$expand": "queuemembership_association($select=name)"},
        )
        assert [q["name"] for q in answer.json()["queuemembership_association"]] == ["Web support"]

        code, out, _ = run(capsys, "plan", str(project), *target, "--detailed-exitcode")
        assert code == 0, out

        # One text of the profile: one update of the profile, nothing else.
        edit(manifest, "defaultMaxUnits: 3", "defaultMaxUnits: 4")
        code, out, _ = run(capsys, "plan", str(project), *target, "--format", "json")
        assert changes(out) == [("update", "CapacityProfile/chat-profile", ["defaultMaxUnits"])]

        # The reset frequency is set once: the profile is replaced, and so is the row naming it
        # (a profile a workstream uses cannot be deleted: REF-LWCP, Restrict).
        edit(manifest, "defaultMaxUnits: 4", "defaultMaxUnits: 4\n  resetAfter: 1d")
        code, out, _ = run(capsys, "plan", str(project), *target, "--format", "json")
        assert changes(out) == [
            ("replace", "CapacityProfile/chat-profile", ["defaultMaxUnits", "resetAfter"]),
            ("replace", "Workstream/web-chat/capacity:chat-profile", ["profile"]),
        ]
        code, out, err = run(capsys, "apply", str(project), *target, "--yes", "--no-color")
        assert (code, err) == (0, ""), out + err
        (profile,) = emulator.rows("msdyn_capacityprofiles")
        assert (profile["msdyn_resetduration"], profile["msdyn_defaultmaxunits"]) == (DAILY, 4)
        assert len(emulator.rows("msdyn_liveworkstreamcapacityprofiles")) == 1
        code, out, _ = run(capsys, "plan", str(project), *target, "--detailed-exitcode")
        assert code == 0, out

        # A member left out stays without --prune (the plan says so), and goes with it.
        edit(
            manifest, "members: [ada@contoso.com, grace@contoso.com]", "members: [ADA@contoso.com]"
        )
        code, out, err = run(capsys, "plan", str(project), *target, "--detailed-exitcode")
        assert code == 0, out + err
        assert "1 member is in the target but not in its members (grace@contoso.com)" in out
        code, out, _ = run(capsys, "plan", str(project), *target, "--prune", "--format", "json")
        assert changes(out) == [("update", "Queue/web-support", ['members["grace@contoso.com"]'])]
        code, out, _ = run(capsys, "plan", str(project), *target, "--prune", "--no-color", "-v")
        assert '- members["grace@contoso.com"]: "grace@contoso.com"' in out
        # plan -v lists the calls apply makes: the one $ref, no PATCH of the queue itself.
        calls = [line.split() for line in out.splitlines() if line.endswith("Queue/web-support")]
        assert [call[:2] for call in calls] == [
            [
                "DELETE",
                f"queues({queue_id(emulator)})/queuemembership_association(<grace@contoso.com>)/$ref",
            ]
        ]
        code, out, err = run(
            capsys, "apply", str(project), *target, "--prune", "--yes", "--no-color"
        )
        assert (code, err) == (0, ""), out + err
        assert members(emulator) == ["ada@contoso.com"]
        assert grace  # the user stays; only the membership went

        # A sign-in name no user of the target has: plan exit 1, naming it.
        edit(
            manifest, "members: [ADA@contoso.com]", "members: [ada@contoso.com, ghost@contoso.com]"
        )
        code, out, err = run(capsys, "plan", str(project), *target)
        assert code == 1
        assert (
            "support.yaml:7:30: error: Queue/web-support: no user signs in as ghost@contoso.com "
            "in the target" in err
        )
        edit(
            manifest, "members: [ada@contoso.com, ghost@contoso.com]", "members: [ada@contoso.com]"
        )

        # A profile row made in the admin center counts for the workstream too: the plan says
        # so instead of that the target matches.
        (workstream,) = emulator.rows("msdyn_liveworkstreams")
        other = emulator.post(
            "msdyn_capacityprofiles",
            {"msdyn_name": "Hand made", "msdyn_uniquename": "new_hand", "msdyn_defaultmaxunits": 9},
        )
        assert other.status_code == 204, other.text
        (hand,) = [
            p for p in emulator.rows("msdyn_capacityprofiles") if p["msdyn_name"] == "Hand made"
        ]
        answer = emulator.post(
            "msdyn_liveworkstreamcapacityprofiles",
            {
                "msdyn_name": "Hand made row",
                "msdyn_workstream_id@odata.bind": (
                    f"/msdyn_liveworkstreams({workstream['msdyn_liveworkstreamid']})"
                ),
                "msdyn_capacityProfile_id@odata.bind": (
                    f"/msdyn_capacityprofiles({hand['msdyn_capacityprofileid']})"
                ),
            },
        )
        assert answer.status_code == 204, answer.text
        code, out, _ = run(capsys, "plan", str(project), *target, "--no-color")
        assert (
            "Warning: Workstream/web-chat: a capacity profile row this project does not manage, "
            "WorkstreamCapacityProfile 'Hand made row'" in " ".join(out.split())
        )
        row_id = answer.headers["OData-EntityId"][-37:-1]
        assert emulator.delete(f"msdyn_liveworkstreamcapacityprofiles({row_id})").status_code == 204
        assert (
            emulator.delete(
                f"msdyn_capacityprofiles({hand['msdyn_capacityprofileid']})"
            ).status_code
            == 204
        )

        # Switching to unit-based capacity is an update; the profile row goes with --prune.
        edit(manifest, "capacity: {profiles: [chat-profile]}", "capacity: {units: 2}")
        code, out, _ = run(capsys, "plan", str(project), *target, "--format", "json")
        assert changes(out) == [
            (
                "update",
                "Workstream/web-chat",
                ["distribution.capacity", "distribution.capacity.units"],
            )
        ]
        code, out, err = run(
            capsys, "apply", str(project), *target, "--prune", "--yes", "--no-color"
        )
        assert (code, err) == (0, ""), out + err
        (workstream,) = emulator.rows("msdyn_liveworkstreams")
        assert (workstream["msdyn_capacityformat"], workstream["msdyn_capacityrequired"]) == (
            UNIT_BASED,
            2,
        )
        assert emulator.rows("msdyn_liveworkstreamcapacityprofiles") == []
        edit(manifest, "capacity: {units: 2}", "capacity: {profiles: [chat-profile]}")
        code, out, err = run(capsys, "apply", str(project), *target, "--yes", "--no-color")
        assert (code, err) == (0, ""), out + err

        # Export: the profile, the workstream's profiles and the queue's members come back.
        exported = tmp_path / "exported"
        code, out, err = run(
            capsys, "export", *target, "--namespace", NAMESPACE, "--out", str(exported)
        )
        assert code == 0, out + err
        queues = (exported / "queues.yaml").read_text()
        assert "  members:\n  - ada@contoso.com\n" in queues
        assert "kind: CapacityProfile" in (exported / "capacity-profiles.yaml").read_text()
        assert "profiles:\n      - chat-profile" in (exported / "workstreams.yaml").read_text()
        code, out, _ = run(capsys, "plan", str(exported), *target, "--detailed-exitcode")
        assert code == 0, out


def test_a_replaced_queue_gets_all_its_members_back(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A replace deletes the queue and creates it again, without members: apply adds every
    member it should have, not only those the plan shows as changed."""
    manifest = project / "support.yaml"
    claims = (
        "---\napiVersion: reconciler.omnichannel/v1\nkind: Queue\nmetadata:\n  name: claims\n"
        "spec:\n  displayName: Claims\n  type: record\n"
        "  members: [ada@contoso.com, grace@contoso.com]\n"
    )
    manifest.write_text(manifest.read_text() + claims)
    with Served(tmp_path / "org.db") as emulator:
        target = ("--target", emulator.url)
        add_user(emulator, "ada@contoso.com", "Ada", "Lovelace")
        add_user(emulator, "grace@contoso.com", "Grace", "Hopper")
        code, out, err = run(capsys, "apply", str(project), *target, "--yes", "--no-color")
        assert (code, err) == (0, ""), out + err
        assert members(emulator, "Claims") == ["ada@contoso.com", "grace@contoso.com"]

        # A member added by hand stays, as the plan's warning says: the queue created again
        # gets it back too (without --prune).
        linus = add_user(emulator, "linus@contoso.com", "Linus", "Torvalds")
        (claims,) = [q for q in emulator.rows("queues") if q["name"] == "Claims"]
        answer = emulator.post(
            f"queues({claims['queueid']})/queuemembership_association/$ref",
            {"@odata.id": f"{emulator.url}/api/data/v9.2/systemusers({linus})"},
        )
        assert answer.status_code == 204, answer.text
        edit(manifest, "  type: record\n", "  type: messaging\n")
        code, out, _ = run(capsys, "plan", str(project), *target, "--format", "json")
        assert changes(out) == [("replace", "Queue/claims", ["type"])]
        code, out, err = run(capsys, "apply", str(project), *target, "--yes", "--no-color")
        assert (code, err) == (0, ""), out + err
        assert "linus@contoso.com" in out  # the warning: kept
        all_three = ["ada@contoso.com", "grace@contoso.com", "linus@contoso.com"]
        assert members(emulator, "Claims") == all_three
        # Members left out of the manifest: a replace keeps every one.
        edit(manifest, "  members: [ada@contoso.com, grace@contoso.com]\n", "")
        edit(manifest, "  type: messaging\n", "  type: record\n")
        code, out, err = run(capsys, "apply", str(project), *target, "--yes", "--no-color")
        assert (code, err) == (0, ""), out + err
        assert members(emulator, "Claims") == all_three
        edit(
            manifest,
            "  displayName: Claims\n",
            "  displayName: Claims\n  members: [ada@contoso.com, grace@contoso.com]\n",
        )
        edit(manifest, "  type: record\n", "  type: messaging\n")
        code, out, err = run(
            capsys, "apply", str(project), *target, "--yes", "--prune", "--no-color"
        )
        assert (code, err) == (0, ""), out + err
        assert members(emulator, "Claims") == ["ada@contoso.com", "grace@contoso.com"]
        code, out, _ = run(capsys, "plan", str(project), *target, "--detailed-exitcode")
        assert code == 0, out

        # Another field of a queue with members: one update, from a saved plan too; the
        # members are neither looked up nor touched.
        edit(
            manifest,
            "  displayName: Claims\n",
            "  displayName: Claims\n  description: All claims\n",
        )
        saved = tmp_path / "plan.json"
        code, out, err = run(capsys, "plan", str(project), *target, "--out", str(saved))
        assert code == 0, out + err
        code, out, err = run(capsys, "apply", "--plan", str(saved), "--yes", "--no-color")
        assert (code, err) == (0, ""), out + err
        assert "~ Queue/claims: updated (" in out
        assert members(emulator, "Claims") == ["ada@contoso.com", "grace@contoso.com"]
