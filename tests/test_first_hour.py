"""A newcomer's first hour (issue 20): a project laid out the way teams lay them out, a saved plan
shown again, each command's options, colour and shell completion. In-process through the CLI."""

from __future__ import annotations

import io
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from examples_project import KEY_FILE, MARKERS, ROOT, SECRETS, copy_examples

from reconciler.cli import main

PROJECT = """\
namespace: 3b7c1e62-5d0a-4c8e-9f21-6a4d2b8e7c10
environments:
  test:
    target: local:state/org.db
    vars: {FB_APP_ID: "100000000000001", TEAM_SUFFIX: " (test)"}
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with reconciler.yaml at its root and the examples' manifests in manifests/."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    shutil.copytree(
        ROOT / "examples",
        repo / "manifests",
        ignore=shutil.ignore_patterns("*.json", "reconciler.yaml", "ci"),
    )
    (repo / "manifests" / "gbm-service-account.json").write_text(KEY_FILE)
    (repo / "reconciler.yaml").write_text(PROJECT)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    for name in ("RECONCILER_TARGET", "RECONCILER_PLAN_KEY", "NO_COLOR", "DATAVERSE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(repo)
    return repo


def databases(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.db"))


def test_the_project_file_at_the_repository_root_is_found_from_the_manifests_folder(
    repository, capsys
):
    code, out, err = run(capsys, "validate", "manifests", "--env", "test")
    assert (code, err) == (0, ""), out
    assert "0 errors" in out
    code, out, err = run(capsys, "plan", "manifests", "--env", "test", "--no-color")
    assert (code, err) == (0, ""), err
    assert "Target: local:state/org.db" in out
    assert "Plan: 36 to create" in out


def test_a_local_target_is_the_same_database_from_any_folder(repository, capsys, monkeypatch):
    code, _, err = run(capsys, "apply", "manifests", "--env", "test", "--yes")
    assert (code, err) == (0, ""), err
    assert databases(repository) == ["state/org.db"]
    monkeypatch.chdir(repository / "manifests")  # planning from another folder
    code, out, err = run(capsys, "plan", ".", "--env", "test", "--detailed-exitcode")
    assert (code, err) == (0, ""), out + err
    assert "Target: local:../state/org.db" in out
    assert "No changes." in out
    assert databases(repository) == ["state/org.db"]  # no new, empty database


def test_a_command_line_local_path_is_relative_to_the_working_folder(repository, capsys):
    code, out, _ = run(capsys, "plan", "manifests", "--env", "test", "--target", "local:here.db")
    assert code == 0
    assert "Target: local:here.db" in out
    assert databases(repository) == ["here.db"]


def test_the_search_upward_stops_at_the_repository_root(tmp_path, capsys, monkeypatch):
    (tmp_path / "reconciler.yaml").write_text("environments: {outside: {}}\n")  # not the repo's
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "manifests").mkdir()
    (repo / "manifests" / "queue.yaml").write_text(
        "apiVersion: reconciler.omnichannel/v1\nkind: Queue\nmetadata: {name: q}\nspec: {}\n"
    )
    monkeypatch.chdir(repo)
    code, out, err = run(capsys, "validate", "manifests", "-v")
    assert code == 0, out
    assert "project file: none" in err
    code, _, err = run(capsys, "plan", "manifests", "--target", "local:x.db")
    assert code == 0
    assert err.count("note: no reconciler.yaml in manifests or the folders above it") == 1
    assert "the default namespace 6f1d3c0e-8a4b-5c2d-9e7f-0a1b2c3d4e5f" in err
    assert "target local" not in err  # the target was chosen, not defaulted


def test_without_a_project_file_plan_says_once_which_defaults_it_uses(tmp_path, capsys):
    (tmp_path / "queue.yaml").write_text(
        "apiVersion: reconciler.omnichannel/v1\nkind: Queue\nmetadata: {name: q}\nspec: {}\n"
    )
    code, out, err = run(capsys, "plan", str(tmp_path), "--target", f"local:{tmp_path}/o.db")
    assert code == 0
    assert err.count("note:") == 1
    assert "Plan: 1 to create" in out


# --- show -------------------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> Path:
    copy_examples(tmp_path, monkeypatch)
    code, _, err = run(capsys, "plan", "examples", "--env", "dev", "--out", "plan.json")
    assert (code, err) == (0, "")
    return tmp_path / "plan.json"


def test_show_prints_a_saved_plan_as_plan_did(saved, capsys):
    _, planned, _ = run(capsys, "plan", "examples", "--env", "dev", "--no-color")
    code, out, err = run(capsys, "show", str(saved), "--no-color")
    assert (code, err) == (0, "")
    assert "Plan: 36 to create, 0 to update, 0 to replace, 0 to delete." in out
    assert out.splitlines()[1:] == planned.splitlines()[1:]  # the same plan (read counts aside)
    for marker in MARKERS:
        assert marker not in out


def test_show_json_round_trips_the_checksum_and_markdown_renders(saved, capsys):
    code, out, _ = run(capsys, "show", str(saved), "--format", "json")
    assert code == 0
    assert json.loads(out)["checksum"] == json.loads(saved.read_text())["checksum"]
    assert out == saved.read_text()
    code, out, _ = run(capsys, "show", str(saved), "--format", "markdown")
    assert code == 0
    assert out.startswith("### reconciler plan for `local:examples/.reconciler/dev.db`")


def test_show_refuses_a_plan_changed_after_it_was_written(saved, capsys):
    saved.write_text(saved.read_text().replace('"create"', '"delete"', 1))
    code, out, err = run(capsys, "show", str(saved))
    assert (code, out) == (1, "")
    assert "was changed after it was written (checksum mismatch)" in err
    code, _, err = run(capsys, "show", "missing.json")
    assert code == 1
    assert "cannot read the plan missing.json" in err


# --- each command its options -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "arguments"),
    [(["schema"], []), (["emulator", "serve"], []), (["completion"], ["bash"]), (["show"], ["p"])],
    ids=lambda value: " ".join(value),
)
def test_commands_offer_no_option_they_would_ignore(command, arguments, capsys):
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    out = capsys.readouterr().out
    listed = re.findall(r"^ +(-[-\w]+)", out, re.M) + re.findall(r"\[(--[-\w]+)", out)
    assert listed
    assert not {"--env", "--var", "--var-file", "--target"} & set(listed)
    code = main([*command, *arguments, "--env", "dev"])
    assert code == 1
    assert "unrecognized arguments: --env dev" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["validate", "plan", "apply", "export", "show", "schema"])
def test_every_option_has_help_text(command):
    from reconciler.cli import build_parser

    parser = build_parser()
    (commands,) = [a for a in parser._actions if a.dest == "command"]
    sub = commands.choices[command]  # type: ignore[union-attr]
    for action in sub._actions:
        assert action.help, f"{command} {action.option_strings or action.dest}"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_name_the_commands_and_their_options(shell, capsys):
    code, out, err = run(capsys, "completion", shell)
    assert (code, err) == (0, "")
    for word in ("validate", "plan", "apply", "show", "--detailed-exitcode", "--format"):
        assert word in out, word


# --- colour -----------------------------------------------------------------------------------


class Pipe:
    def isatty(self) -> bool:
        return False


class Terminal:
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("environ", "stream", "flag", "expected"),
    [
        ({}, Terminal(), False, True),
        ({}, Pipe(), False, False),
        ({"FORCE_COLOR": "1"}, Pipe(), False, True),
        ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, Terminal(), False, False),
        ({"FORCE_COLOR": "1"}, Pipe(), True, False),
        ({"TERM": "dumb"}, Terminal(), False, False),
        ({"TERM": "dumb", "FORCE_COLOR": "1"}, Pipe(), False, True),
        ({"NO_COLOR": ""}, Terminal(), False, True),  # set but empty: no-color.org says ignore
    ],
)
def test_colour_follows_no_color_force_color_term_and_the_flag(
    environ, stream, flag, expected, monkeypatch
):
    from reconciler.render.style import use_color

    for name in ("FORCE_COLOR", "NO_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert use_color(stream, flag) is expected  # type: ignore[arg-type]


def test_force_color_colours_a_piped_validate(tmp_path, capsys, monkeypatch):
    (tmp_path / "queue.yaml").write_text(
        "apiVersion: reconciler.omnichannel/v1\nkind: Queue\nmetadata: {name: Q}\nspec: {}\n"
    )
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert not sys.stdout.isatty()
    _, out, _ = run(capsys, "validate", str(tmp_path))
    assert "\033[31m" in out
    _, out, _ = run(capsys, "validate", str(tmp_path), "--no-color")
    assert "\033[" not in out


def test_against_a_revision_finds_the_project_file_at_the_root_too(repository, capsys, monkeypatch):
    import subprocess

    for name, value in {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_CONFIG_NOSYSTEM": "1",
    }.items():
        monkeypatch.setenv(name, value)
    shutil.rmtree(repository / ".git")
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "manifests"]):
        subprocess.run(["git", *command], cwd=repository, check=True, capture_output=True)
    code, out, err = run(capsys, "plan", "manifests", "--env", "test", "--against", "HEAD")
    assert (code, err) == (0, ""), out + err
    assert "No changes." in out


def test_outside_a_repository_the_search_stops_at_the_working_folder(tmp_path, capsys, monkeypatch):
    (tmp_path / "reconciler.yaml").write_text("environments: {dev: {target: 'local:evil.db'}}\n")
    work = tmp_path / "home" / "project"
    (work / "manifests").mkdir(parents=True)
    (work / "manifests" / "queue.yaml").write_text(
        "apiVersion: reconciler.omnichannel/v1\nkind: Queue\nmetadata: {name: q}\nspec: {}\n"
    )
    monkeypatch.chdir(work)
    code, _, err = run(capsys, "validate", "manifests", "-v")
    assert code == 0
    assert "project file: none" in err  # not ../../reconciler.yaml, which anyone could write
    (work / "reconciler.yaml").write_text("environments: {dev: {target: 'local:org.db'}}\n")
    code, _, err = run(capsys, "validate", "manifests", "-v")
    assert code == 0
    assert "project file: reconciler.yaml" in err  # the working folder's own is found


def test_a_saved_local_plan_applied_from_another_folder_makes_no_database(
    repository, capsys, monkeypatch
):
    monkeypatch.chdir(repository / "manifests")
    code, _, err = run(capsys, "plan", ".", "--env", "test", "--out", "../plan.json")
    assert (code, err) == (0, "")
    monkeypatch.chdir(repository)
    code, out, err = run(capsys, "apply", "--plan", "plan.json", "--yes")
    assert (code, out) == (3, "")  # refused for safety: the plan is for another database
    assert "the plan's database ../state/org.db does not exist here" in err
    assert databases(repository.parent) == ["repo/state/org.db"]  # plan's own, no new one


def test_a_plan_of_the_same_changes_made_later_is_not_an_applied_one(saved):
    from reconciler.apply.applier import load_plan

    first = load_plan(saved)
    later = first.model_copy(update={"created_at": "2099-01-01T00:00:00Z"}).with_checksum()
    assert later.checksum == first.checksum  # the same changes...
    assert later.identity() != first.identity()  # ...but another plan
    key = b"k" * 32
    assert first.identity(key).startswith("hmac-sha256:")
    assert first.identity(key) not in (first.identity(), first.identity(b"x" * 32))


def test_apply_json_ends_with_the_problems_and_an_error_when_planning_fails(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    Path("bad.yaml").write_text(
        "apiVersion: reconciler.omnichannel/v1\nkind: Queue\nmetadata: {name: q}\n"
        "spec: {priority: 0}\n",
        encoding="utf-8",
    )
    code, out, _ = run(
        capsys, "apply", "bad.yaml", "--target", "local:x.db", "--yes", "--format", "json"
    )
    assert code == 1
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["type"] for e in events] == ["diagnostic", "error"]
    assert events[0] == {
        "type": "diagnostic",
        "severity": "error",
        "code": "invalid-value",
        "message": "spec.priority: must be at least 1, not 0",
        "file": "bad.yaml",
        "line": 4,
        "column": 8,
    }
    assert events[1] == {
        "type": "error",
        "message": "no plan: 1 error in the manifests",
        "exit_code": 1,
    }


def test_a_dumb_terminal_gets_lines_and_no_bar(repository, capsys, monkeypatch):
    class Screen(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Screen()
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.setenv("TERM", "dumb")
    assert main(["apply", "manifests", "--env", "test", "--yes"]) == 0
    out = screen.getvalue()
    assert "\033[" not in out
    assert "\r" not in out
    assert "+ Queue/vip-support: created (" in out


def queue_manifests(folder: Path) -> Path:
    (folder / "manifests").mkdir(parents=True)
    (folder / "manifests" / "queue.yaml").write_text(
        "apiVersion: reconciler.omnichannel/v1\nkind: Queue\nmetadata: {name: q}\nspec: {}\n"
    )
    return folder / "manifests"


def project_file_of(capsys, *paths: str) -> str:
    code, _, err = run(capsys, "validate", *paths, "-v")
    assert code == 0, err
    (line,) = [line for line in err.splitlines() if line.startswith("project file: ")]
    return line.removeprefix("project file: ")


def test_a_git_folder_in_a_folder_anyone_writes_to_is_not_a_repository(
    tmp_path, capsys, monkeypatch
):
    shared = tmp_path / "shared"  # like /tmp: anyone may put a .git and a reconciler.yaml there
    (shared / ".git").mkdir(parents=True)
    (shared / "reconciler.yaml").write_text("environments: {x: {target: 'local:evil.db'}}\n")
    shared.chmod(0o1777)
    queue_manifests(shared / "artifact")
    monkeypatch.chdir(shared / "artifact")
    assert project_file_of(capsys, "manifests").startswith("none")


def test_from_the_file_systems_root_the_search_stays_in_the_paths_folder(
    tmp_path, capsys, monkeypatch
):
    (tmp_path / "reconciler.yaml").write_text("environments: {x: {target: 'local:evil.db'}}\n")
    manifests = queue_manifests(tmp_path / "artifact")
    monkeypatch.chdir("/")
    assert project_file_of(capsys, str(manifests)).startswith("none")


def test_a_working_folder_reached_through_a_link_keeps_its_project_file(
    tmp_path, capsys, monkeypatch
):
    project = tmp_path / "real" / "project"
    queue_manifests(project)
    (project / "reconciler.yaml").write_text("environments: {dev: {target: 'local:x.db'}}\n")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.chdir(tmp_path / "link" / "project")
    assert project_file_of(capsys, str(tmp_path / "link" / "project" / "manifests")) == (
        "reconciler.yaml"
    )


def test_an_environment_without_a_project_file_says_none_was_found(tmp_path, capsys, monkeypatch):
    manifests = queue_manifests(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "validate", str(manifests.name), "--env", "dev")
    assert (code, out) == (1, "")
    assert err.startswith("error: unknown environment 'dev': no reconciler.yaml was found")
