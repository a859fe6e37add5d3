"""The command line, run in-process through ``main`` (and once as a real process)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.cli import main

ROOT = Path(__file__).resolve().parent.parent
PROJECTS = Path("tests/fixtures/projects")


@pytest.fixture(autouse=True)
def at_repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("NO_COLOR", raising=False)


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_examples_passes_with_the_retirement_warning(capsys):
    code, out, err = run(capsys, "validate", "examples/")
    assert code == 0
    assert err == ""
    assert (
        "examples/google-business-messages.yaml:5:1: warning: Google's Business Messages was "
        "retired on 31 July 2024" in out
    )
    assert "examples/google-business-messages.yaml:23:3: warning:" in out
    assert out.splitlines()[-1] == "16 documents in 5 files: 0 errors, 2 warnings"


def test_validate_json_format(capsys):
    code, out, _ = run(capsys, "validate", "examples", "--format", "json")
    assert code == 0
    payload = json.loads(out)
    assert payload["summary"] == {"files": 5, "documents": 16, "errors": 0, "warnings": 2}
    first = payload["diagnostics"][0]
    assert list(first) == ["file", "line", "column", "severity", "code", "message"]
    assert first["file"] == "examples/google-business-messages.yaml"
    assert (first["line"], first["column"], first["severity"]) == (5, 1, "warning")
    assert first["code"] == "retired-channel"


def test_each_environment_is_validated_and_named_when_it_alone_fails(capsys):
    code, out, _ = run(capsys, "validate", str(PROJECTS / "environments"))
    assert code == 1
    queue = PROJECTS / "environments" / "queue.yaml"
    lines = out.splitlines()
    message = "spec.priority: must be at least 1, not '0' [environment prod]"
    assert f"{queue}:6:3: error: {message}" in lines
    # A problem every environment shares is reported once, without a suffix.
    assert sum("undefined variable 'UNSET'" in line for line in lines) == 1
    assert f"{queue}:7:3: error: undefined variable 'UNSET'" in out


def test_env_var_and_var_file_layers(capsys, tmp_path):
    path = str(PROJECTS / "environments")
    code, out, _ = run(capsys, "validate", path, "--env", "dev", "--var", "UNSET=x")
    assert (code, out.splitlines()[-1]) == (0, "1 document in 1 file: 0 errors, 0 warnings")
    var_file = tmp_path / "vars.yaml"
    var_file.write_text("UNSET: from-file\nPRIORITY: 3\n")
    code, _, _ = run(capsys, "validate", path, "--env", "prod", "--var-file", str(var_file))
    assert code == 0  # the var file overrides the environment's PRIORITY 0
    code, out, _ = run(
        capsys, "validate", path, "--env", "dev", "--var-file", str(var_file), "--var", "PRIORITY=0"
    )
    assert code == 1  # --var wins over both
    assert "spec.priority: must be at least 1" in out


def test_a_bad_var_file_is_reported(capsys, tmp_path):
    var_file = tmp_path / "vars.yaml"
    var_file.write_text("ok: 1\nnot-a-name: 2\nnested: {a: 1}\n")
    code, out, _ = run(capsys, "validate", "examples", "--env", "dev", "--var-file", str(var_file))
    assert code == 1
    assert f"{var_file}:2:1: error: invalid variable name 'not-a-name'" in out
    assert f"{var_file}:3:1: error: variable 'nested' must be a single value" in out


def test_unknown_environment_is_a_clear_error(capsys):
    code, out, err = run(capsys, "validate", "examples", "--env", "staging")
    assert code == 1
    assert out == ""
    assert err == "error: unknown environment 'staging' (environments: dev, prod)\n"


@pytest.mark.parametrize("bad", ["NOEQUALS", "1X=2", "=v"])
def test_malformed_var_is_a_usage_error(capsys, bad):
    code, _, err = run(capsys, "validate", "examples", "--var", bad)
    assert code == 1
    assert err.startswith("error: --var expects NAME=VALUE")


def test_project_file_problems_are_located(capsys):
    code, out, _ = run(capsys, "validate", str(PROJECTS / "bad-project"))
    project = PROJECTS / "bad-project" / "reconciler.yaml"
    assert code == 1
    assert f"{project}:1:1: error: namespace: must be a GUID" in out
    assert (
        f"{project}:5:3: error: policy: unknown field 'retiredChanels'; "
        "did you mean 'retiredChannels'?" in out
    )
    assert f"{project}:8:5: error: environments.dev.target: must be local" in out


def test_only_one_project_file(capsys):
    code, out, _ = run(capsys, "validate", str(PROJECTS / "two-projects"))
    assert code == 1
    sub = PROJECTS / "two-projects" / "sub" / "reconciler.yml"
    assert f"{sub}:1:1: error: more than one project file" in out


def test_hidden_folders_and_files_and_other_extensions_are_skipped(capsys):
    code, out, _ = run(capsys, "validate", str(PROJECTS / "hidden"))
    assert (code, out) == (0, "1 document in 1 file: 0 errors, 0 warnings\n")


def test_missing_paths_and_empty_folders(capsys, tmp_path):
    code, out, _ = run(capsys, "validate", "does/not/exist")
    assert code == 1
    assert "error: does/not/exist: no such file or directory" in out
    code, out, _ = run(capsys, "validate", str(tmp_path))
    assert code == 1
    assert "error: no *.yaml or *.yml manifest files found" in out


def test_a_single_file_finds_the_project_file_beside_it(capsys):
    code, out, _ = run(capsys, "validate", str(PROJECTS / "policy-error" / "gbm.yaml"))
    assert code == 3  # the project file's policy applies
    assert "(refused by policy.retiredChannels: error)" in out


def test_retired_channel_under_policy_error_is_exit_3_and_absent_records_are_fine(capsys):
    code, out, _ = run(capsys, "validate", str(PROJECTS / "policy-error"))
    assert code == 3
    lines = [line for line in out.splitlines() if ": error: " in line]
    assert len(lines) == 1  # the `ensure: absent` account may always be deleted
    assert "gbm.yaml:2:1: error: Google's Business Messages was retired on 31 July 2024" in lines[0]


def test_policy_refusals_with_other_errors_are_exit_1(capsys, tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    for source in (PROJECTS / "policy-error").iterdir():
        (project / source.name).write_text(source.read_text())
    (project / "queue.yaml").write_text(
        "apiVersion: reconciler.omnichannel/v1\nkind: Queue\nmetadata: {name: q}\n"
        "spec: {priority: 0}\n"
    )
    code, out, _ = run(capsys, "validate", str(project))
    assert code == 1
    assert "queue.yaml:4:8: error: spec.priority: must be at least 1" in out


def test_usage_errors_are_exit_1_without_a_traceback(capsys):
    code, _, err = run(capsys, "nonsense")
    assert code == 1
    assert err.startswith("error: argument COMMAND: invalid choice: 'nonsense'")
    assert "Traceback" not in err


def test_internal_errors_show_a_traceback_only_with_debug(capsys, monkeypatch):
    def explode(options):
        raise RuntimeError("boom")

    monkeypatch.setattr("reconciler.cli.validate.validate", explode)
    code, _, err = run(capsys, "validate", "examples")
    assert code == 1
    assert err == (
        "error: unexpected internal error (RuntimeError); rerun with --debug for the traceback\n"
    )
    code, _, err = run(capsys, "validate", "examples", "--debug")
    assert code == 1
    assert "Traceback (most recent call last)" in err
    assert "RuntimeError: boom" in err


def test_colour_only_when_asked_for(capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    _, out, _ = run(capsys, "validate", "examples")
    assert "\033[33mwarning\033[0m" in out
    _, out, _ = run(capsys, "validate", "examples", "--no-color")
    assert "\033[" not in out
    monkeypatch.setenv("NO_COLOR", "1")
    _, out, _ = run(capsys, "validate", "examples")
    assert "\033[" not in out


def test_python_dash_m_and_the_console_script_work():
    env = {**os.environ, "NO_COLOR": "1"}
    module = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", "examples"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert module.returncode == 0, module.stderr
    assert module.stdout.endswith("0 errors, 2 warnings\n")
    script = Path(sys.executable).with_name("reconciler")
    version = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, check=False
    )
    assert version.stdout.strip() == "reconciler 0.1.0"


def test_references_to_an_invalid_document_are_not_called_dangling(capsys, tmp_path):
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "apiVersion: reconciler.omnichannel/v1\nkind: Queue\nmetadata: {name: q}\n"
        "spec: {priority: 0}\n---\n"
        "apiVersion: reconciler.omnichannel/v1\nkind: RoutingRuleSet\nmetadata: {name: rs}\n"
        "spec: {workstream: nowhere, type: route-to-queue, rules: "
        "[{name: r, when: {field: facebook.locale, op: isNotNull}, routeTo: q}]}\n"
    )
    code, out, _ = run(capsys, "validate", str(manifest))
    assert code == 1
    assert f"{manifest}:4:8: error: spec.priority: must be at least 1" in out
    assert "no Workstream named 'nowhere'" in out
    assert "no Queue named 'q'" not in out
    assert out.splitlines()[-1] == "2 documents in 1 file: 2 errors, 0 warnings"


def test_unknown_kind_suggests_the_closest(capsys, tmp_path):
    manifest = tmp_path / "m.yaml"
    manifest.write_text("apiVersion: reconciler.omnichannel/v1\nkind: Queu\nmetadata: {name: q}\n")
    code, out, _ = run(capsys, "validate", str(manifest))
    assert code == 1
    assert f"{manifest}:2:1: error: kind: unknown kind 'Queu'; expected one of" in out
    assert "did you mean 'Queue'?" in out


def test_an_empty_spec_is_reported_at_its_key(capsys, tmp_path):
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "apiVersion: reconciler.omnichannel/v1\nkind: Queue\nmetadata: {name: q}\nspec:\n"
    )
    code, out, _ = run(capsys, "validate", str(manifest))
    assert code == 1
    assert out.splitlines()[0] == (
        f"{manifest}:4:1: error: missing required field 'spec' (only 'ensure: absent' may omit it)"
    )


def test_starting_the_cli_does_not_import_planning_apply_or_http() -> None:
    """validate's start-up: the command modules import what they need when they run."""
    import subprocess
    import sys

    code = (
        "import sys, reconciler.cli\n"
        "heavy = ['httpx', 'reconciler.plan.planner', 'reconciler.apply.applier',"
        " 'reconciler.export.exporter', 'reconciler.emulator', 'reconciler.schemagen']\n"
        "print([name for name in heavy if name in sys.modules])\n"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"
