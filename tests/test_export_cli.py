"""``reconciler export`` end to end: the shipped examples applied to a local target, exported
through the CLI in-process, and the exported folder planned against the same target.

The variables the export asks for are filled from its README (which secret of which record
each holds), with the values the examples were applied with: so the README is checked too.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from examples_project import KEY_FILE, MARKERS, SECRETS, copy_examples

from reconciler.cli import main
from reconciler.export.files import schema_files
from reconciler.manifest.discover import discover
from reconciler.targets import connect, parse_target

NAMESPACE = "3b7c1e62-5d0a-4c8e-9f21-6a4d2b8e7c10"  # examples/reconciler.yaml
DB = "local:examples/.reconciler/dev.db"  # examples/reconciler.yaml's, from the tmp folder
RECORDS = 36  # what the examples make, routing records and context variables included
# Which example secret each exported secret is: by field path and record address.
VALUES = {
    ("applicationSecret", "FacebookAccount/contoso-facebook"): SECRETS["FB_APP_SECRET"],
    ("accessToken", "FacebookAccount/contoso-facebook/Contoso Support"): SECRETS[
        "FB_PAGE_TOKEN_SUPPORT"
    ],
    ("accessToken", "FacebookAccount/contoso-facebook/Contoso Deals"): SECRETS[
        "FB_PAGE_TOKEN_DEALS"
    ],
    ("clientToken", "GoogleBusinessMessagesAccount/{gbm}"): SECRETS["GBM_CLIENT_TOKEN"],
    ("serviceAccountKey", "GoogleBusinessMessagesAccount/{gbm}"): KEY_FILE,
}
SCHEMAS = set(schema_files())  # written into .schemas/, for the modelines
MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$")
ROW = re.compile(r"^\| `([A-Z0-9_]+)` \| `([^`]+)` of `([^`]+)` \|$", re.M)


@pytest.fixture
def managed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """The examples applied: the org holds their records and the examples project's ledger."""
    copy_examples(tmp_path, monkeypatch)
    code, out, err = run(capsys, "apply", "examples", "--env", "dev", "--yes", "--no-color")
    assert (code, err) == (0, ""), out + err
    return tmp_path


@pytest.fixture
def applied(managed: Path) -> Path:
    """The examples applied, and their project's ledger removed (an org applied before
    ledgers, or by a project whose repository is lost): no project manages the records, so an
    export under a namespace of its own adopts them."""
    asyncio.run(remove_ledgers())
    return managed


async def remove_ledgers() -> None:
    async with connect(parse_target(DB), {}) as client:
        notes = await client.list("annotations", select=["annotationid", "subject"])
        for note in notes:
            if str(note["subject"]).startswith("reconciler ledger "):
                await client.delete("annotations", note["annotationid"])


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def export(capsys: pytest.CaptureFixture[str], out: str, *args: str) -> tuple[int, str, str]:
    return run(capsys, "export", "--out", out, "--target", DB, "--no-color", *args)


def files(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def assert_modelines(folder: Path) -> None:
    """Every YAML file the export wrote starts with a modeline naming, by a path from the file,
    a schema the export wrote that its documents validate against."""
    import jsonschema

    for path in sorted(folder.rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        found = MODELINE.match(text.splitlines()[0])
        assert found, f"{path}: {text.splitlines()[0]}"
        schema_path = (path.parent / found[1]).resolve()
        assert schema_path.parent == (folder / ".schemas").resolve(), found[1]
        validator = jsonschema.Draft202012Validator(json.loads(schema_path.read_text()))
        for document in yaml.safe_load_all(text):
            assert list(validator.iter_errors(document)) == [], path


def documents(folder: Path) -> list[dict[str, Any]]:
    found = []
    for path in discover([str(folder)]).manifests:  # as validate finds them
        found += [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
    return found


def environment_from_readme(
    folder: Path, monkeypatch: pytest.MonkeyPatch, gbm: str
) -> dict[str, str]:
    """Set each variable the README lists to the example value of the secret it says it holds."""
    rows = ROW.findall((folder / "README.md").read_text())
    assert rows, "the README lists no variables"
    values = {(path, address.format(gbm=gbm)): v for (path, address), v in VALUES.items()}
    chosen = {}
    for name, path, address in rows:
        chosen[name] = values[(path, address)]
        monkeypatch.setenv(name, values[(path, address)])
    assert len(chosen) == len(values)
    return chosen


def plan(capsys: pytest.CaptureFixture[str], folder: Path) -> tuple[int, dict[str, Any]]:
    code, out, err = run(
        capsys, "plan", str(folder), "--target", DB, "--format", "json", "--detailed-exitcode"
    )
    assert "error" not in err, err
    return code, json.loads(out)


def assert_no_record_writes(result: dict[str, Any], folder: Path) -> int:
    """The plan of an export writes no record: each is ``noop``, or ``adopt`` without field
    changes, adopted exactly when its document was exported with ``metadata.id`` (a record the
    namespace did not make, its pages, contract, context variables, routing and steps with it).
    The number of adoptions."""
    by_id = {
        f"{d['kind']}/{d['metadata']['name']}" for d in documents(folder) if "id" in d["metadata"]
    }
    for change in result["changes"]:
        assert change["action"] in ("noop", "adopt"), change
        assert change["fields"] == [], change
        document = "/".join(change["address"].split("/", 2)[:2])
        assert (change["action"] == "adopt") == (document in by_id), change
    return result["summary"]["adopt"]


def gbm_name(folder: Path) -> str:
    kinds = {d["kind"]: d for d in documents(folder)}
    return str(kinds["GoogleBusinessMessagesAccount"]["metadata"]["name"])


# --- the round trip ---------------------------------------------------------------------------


def test_the_export_of_the_applied_examples_plans_no_record_writes_only_adoptions(
    applied, capsys, monkeypatch
):
    code, out, err = export(capsys, "exported")
    assert (code, err) == (0, ""), out + err
    assert "in 19 requests" in out  # the rows, the users, and the ledger of the namespace
    folder = applied / "exported"
    environment_from_readme(folder, monkeypatch, gbm_name(folder))
    code, result = plan(capsys, folder)
    # Under a namespace of its own every record is adopted by its id, none written.
    assert code == 2, result["summary"]
    assert assert_no_record_writes(result, folder) == RECORDS
    assert len(result["changes"]) == RECORDS
    assert result["unmanaged"] == {}
    # Once applied, the ledger lists them: nothing left to do.
    code, out, err = run(capsys, "apply", str(folder), "--target", DB, "--yes", "--no-color")
    assert (code, err) == (0, ""), out + err
    code, result = plan(capsys, folder)
    assert code == 0, result["summary"]
    assert {c["action"] for c in result["changes"]} == {"noop"}
    assert len(result["changes"]) == RECORDS


def test_an_export_under_another_namespace_adopts_every_record_by_id(applied, capsys):
    assert export(capsys, "exported")[0] == 0
    exported = documents(applied / "exported")
    assert len(exported) == 16  # 6 queues, 2 accounts, a profile, 3 workstreams, 4 rule sets
    assert all(uuid.UUID(d["metadata"]["id"]) for d in exported)
    project = yaml.safe_load((applied / "exported" / "reconciler.yaml").read_text())
    assert project["namespace"] != NAMESPACE
    # A local database is named from the folder, where `reconciler plan` runs.
    assert project["environments"] == {
        "default": {"target": "local:../examples/.reconciler/dev.db"}
    }


def test_an_org_another_project_manages_exports_nothing_of_it_and_says_which_project(
    managed, capsys
):
    code, out, err = export(capsys, "exported")
    assert code == 0, out + err
    assert "Exported nothing (0 records)" in out
    assert "23 records not exported: listed in exported/README.md." in out  # the widget too
    assert (
        f"managed by another project (namespace {NAMESPACE}, as Queue/general-support); to "
        f"export that project, export with --namespace {NAMESPACE}"
    ) in err


def test_with_the_projects_namespace_its_records_keep_their_names(managed, capsys, monkeypatch):
    applied = managed
    code, out, err = export(capsys, "exported", "--namespace", NAMESPACE, "--env", "dev")
    assert (code, err) == (0, ""), out + err
    folder = applied / "exported"
    exported = {(d["kind"], d["metadata"]["name"]): d for d in documents(folder)}
    original = {(d["kind"], d["metadata"]["name"]) for d in documents(applied / "examples")}
    # Named by the project's ledger: every record under the name it was written with, even
    # when its display name ("General support (dev)") says nothing of it; no metadata.id.
    assert set(exported) == original
    assert ("Queue", "general-support") in exported
    assert all("id" not in d["metadata"] for d in exported.values())
    project = yaml.safe_load((folder / "reconciler.yaml").read_text())
    assert project == {
        "namespace": NAMESPACE,
        "environments": {"dev": {"target": "local:../examples/.reconciler/dev.db"}},
    }
    environment_from_readme(folder, monkeypatch, gbm_name(folder))
    code, result = plan(capsys, folder)
    assert code == 0
    assert {c["action"] for c in result["changes"]} == {"noop"}
    assert len(result["changes"]) == RECORDS


def test_exporting_twice_writes_the_same_bytes(applied, capsys):
    assert export(capsys, "first")[0] == 0
    assert export(capsys, "second")[0] == 0
    first, second = files(applied / "first"), files(applied / "second")
    assert first == second
    assert set(first) == {
        "README.md",
        "reconciler.yaml",
        "queues.yaml",
        "facebook-accounts.yaml",
        "google-business-messages-accounts.yaml",
        "capacity-profiles.yaml",
        "workstreams.yaml",
        "routing/facebook-support.yaml",
        "routing/gbm-stores.yaml",
        "routing/web-chat-dev.yaml",
        *SCHEMAS,
    }
    assert_modelines(applied / "first")
    code, out, _ = export(capsys, "first")
    assert code == 0
    assert "10 files unchanged" in out
    assert "wrote" not in out
    assert files(applied / "first") == first


def test_routing_files_hold_a_workstreams_rule_sets_in_the_order_they_run(applied, capsys):
    assert export(capsys, "exported")[0] == 0
    text = (applied / "exported" / "routing" / "facebook-support.yaml").read_text()
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(text)]
    assert names == ["facebook-support-classification", "facebook-support-routing"]
    queues = [
        d["metadata"]["name"] for d in documents(applied / "exported") if d["kind"] == "Queue"
    ]
    assert queues == sorted(queues)


def test_defaults_are_left_out_and_durations_use_their_largest_exact_unit(applied, capsys):
    assert export(capsys, "exported")[0] == 0
    exported = {
        (d["kind"], d["metadata"]["name"]): d["spec"] for d in documents(applied / "exported")
    }
    assert exported[("Queue", "overflow-support")] == {"priority": 20}
    facebook = exported[("Workstream", "facebook-support")]
    assert facebook["autoCloseAfterInactivity"] == "2d"
    assert "automatedMessages" not in facebook  # true is the default
    text = (applied / "exported" / "workstreams.yaml").read_text()
    assert 'autoCloseAfterInactivity: "2d"' in text


# --- secrets ------------------------------------------------------------------------------------


def test_no_secret_value_is_written_or_shown(applied, capsys):
    code, out, err = export(capsys, "exported", "-v")
    assert code == 0
    written = b"".join(files(applied / "exported").values()).decode()
    for marker in MARKERS:
        assert marker not in written + out + err
    # Every secret is a fromEnv reference named in the README.
    readme = (applied / "exported" / "README.md").read_text()
    references = re.findall(r"fromEnv: ([A-Z0-9_]+)", written)
    assert len(references) == 5
    assert len(set(references)) == 5
    assert all(f"`{name}`" in readme for name in references)


# --- the folder ---------------------------------------------------------------------------------


def test_a_folder_holding_other_files_is_refused_and_left_alone(applied, capsys):
    folder = applied / "mine"
    folder.mkdir()
    (folder / "queues.yaml").write_text("# my own\n")
    code, out, err = export(capsys, "mine")
    assert code == 1
    assert out == ""
    assert err.startswith("error: --out mine holds files an export did not write")
    assert (folder / "queues.yaml").read_text() == "# my own\n"
    assert [p.name for p in folder.iterdir()] == ["queues.yaml"]


def test_a_file_an_earlier_export_did_not_write_is_refused(applied, capsys):
    assert export(capsys, "exported")[0] == 0
    (applied / "exported" / "notes.txt").write_text("keep me")
    code, _, err = export(capsys, "exported")
    assert code == 1
    assert "notes.txt" in err
    assert (applied / "exported" / "notes.txt").read_text() == "keep me"


def test_out_must_not_be_a_file(applied, capsys):
    (applied / "a-file").write_text("x")
    code, _, err = export(capsys, "a-file")
    assert code == 1
    assert "is a file, not a folder" in err


def test_a_reexport_removes_what_the_org_no_longer_holds_and_keeps_the_project_file(
    applied, capsys
):
    assert export(capsys, "exported")[0] == 0
    folder = applied / "exported"
    stale = folder / "routing" / "gone.yaml"
    stale.write_text("---\n")
    # As an earlier export that wrote it would have listed it.
    readme = folder / "README.md"
    readme.write_text(
        readme.read_text().replace("## Files\n\n", "## Files\n\n| `routing/gone.yaml` | x |\n", 1)
    )
    project = folder / "reconciler.yaml"
    edited = project.read_text() + "safety:\n  maxDeletePercent: 10\n"
    project.write_text(edited)
    (folder / ".git").mkdir()  # hidden entries are not the export's business
    code, out, _ = export(capsys, "exported")
    assert code == 0
    assert not stale.exists()
    assert f"removed {Path('exported/routing/gone.yaml')}" in out
    assert project.read_text() == edited


def test_the_namespace_of_an_earlier_export_is_kept_and_must_not_be_contradicted(applied, capsys):
    assert export(capsys, "exported", "--namespace", NAMESPACE)[0] == 0
    assert export(capsys, "exported")[0] == 0
    assert NAMESPACE in (applied / "exported" / "reconciler.yaml").read_text()
    other = "00000000-0000-4000-8000-000000000001"
    code, _, err = export(capsys, "exported", "--namespace", other)
    assert code == 1
    assert "differs from the namespace" in err
    code, _, err = export(capsys, "elsewhere", "--namespace", "not-a-uuid")
    assert code == 1
    assert "--namespace expects a UUID" in err


def test_kind_exports_only_those_kinds(applied, capsys):
    code, _out, err = export(capsys, "queues", "--kind", "Queue")
    assert (code, err) == (0, ""), err
    assert set(files(applied / "queues")) == {
        "README.md",
        "reconciler.yaml",
        "queues.yaml",
        *SCHEMAS,
    }
    assert (
        "Only these kinds were exported: `Queue`" in (applied / "queues" / "README.md").read_text()
    )
    code, _, err = export(capsys, "queues", "--kind", "Queues")
    assert code == 1
    assert "invalid choice: 'Queues'" in err


def test_an_empty_org_exports_no_manifests(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = export(capsys, "exported")
    assert (code, err) == (0, "")
    assert "Exported nothing (0 records)" in out
    assert set(files(tmp_path / "exported")) == {"README.md", "reconciler.yaml", *SCHEMAS}
    assert_modelines(tmp_path / "exported")
    readme = (tmp_path / "exported" / "README.md").read_text()
    assert "The exported records hold no secrets." in readme
    assert "Every record was exported." in readme


def test_a_file_shaped_like_the_exports_but_written_by_hand_is_never_removed(applied, capsys):
    assert export(capsys, "exported")[0] == 0
    mine = applied / "exported" / "routing" / "my-extra.yaml"
    mine.write_text("# mine\n")
    code, _, err = export(capsys, "exported")
    assert code == 1
    assert "routing/my-extra.yaml" in err
    assert mine.read_text() == "# mine\n"


def test_exporting_again_reads_the_org_the_folder_came_from(applied, capsys, monkeypatch):
    assert export(capsys, "exported")[0] == 0
    before = files(applied / "exported")
    code, out, err = run(capsys, "export", "--out", "exported")  # no --target
    assert (code, err) == (0, "")
    assert "from local:examples/.reconciler/dev.db" in out
    assert files(applied / "exported") == before
    # And `reconciler plan` in the folder plans against that org.
    environment_from_readme(applied / "exported", monkeypatch, gbm_name(applied / "exported"))
    monkeypatch.chdir(applied / "exported")
    code, out, err = run(capsys, "plan", "--detailed-exitcode")
    # No record written: the records, exported with metadata.id, are only adopted, and no
    # field differs (no ``~`` line).
    assert (code, err) == (2, ""), out + err
    assert f"Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, {RECORDS} to adopt." in out
    assert "~" not in out


def test_a_partial_export_reports_and_asks_only_for_what_it_wrote(applied, capsys):
    code, out, _ = export(capsys, "exported", "--kind", "Queue")
    assert code == 0
    assert out.startswith("Exported 6 queues (6 records) from")
    assert "secret variable" not in out
    readme = (applied / "exported" / "README.md").read_text()
    assert "fromEnv" not in readme
    assert "The exported records hold no secrets." in readme
    # A full export afterwards takes the folder over; a partial one keeps the other kinds.
    assert export(capsys, "exported")[0] == 0
    code, out, _ = export(capsys, "exported", "--kind", "Queue")
    assert code == 0
    assert "removed" not in out
    assert (applied / "exported" / "workstreams.yaml").exists()
    assert "`workstreams.yaml`" in (applied / "exported" / "README.md").read_text()
    assert export(capsys, "exported")[0] == 0


def test_an_environment_name_the_project_file_refuses_is_refused(applied, capsys):
    code, _, err = export(capsys, "exported", "--env", "my env")
    assert code == 1
    assert "--env 'my env' cannot name an environment" in err
    assert not (applied / "exported").exists()
