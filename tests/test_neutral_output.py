"""No ``##vso[`` or ``##[`` from a manifest reaches any output of the CLI (issue 19).

CI runs ``reconciler plan`` on pull requests whose authors it does not trust; Azure Pipelines'
agent runs ``##vso[...]`` found anywhere in a line of the log as a command (and GitHub's runner
reads ``##[...]``). The renderers write such a sequence's first ``#`` as ``\\u0023``; ``main``
guards stdout and stderr as a last resort (reconciler.render.neutral).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from examples_project import copy_examples

from reconciler.apply.applier import load_plan
from reconciler.cli import main
from reconciler.render import neutral

ATTACK = "##vso[task.setvariable variable=x]y"
GROUP = "##[group]rule"
SHOWN = "\\u0023#vso[task.setvariable variable=x]y"


def runnable(text: str) -> bool:
    return "##vso[" in text.lower() or "##[" in text or neutral.has_sequence(text)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The examples, a queue's display name and a routing rule's name a runner would obey."""
    project = copy_examples(tmp_path, monkeypatch)
    queues = project / "queues.yaml"
    queues.write_text(
        queues.read_text().replace(
            "  priority: 20\n", f'  priority: 20\n  displayName: "{ATTACK}"\n'
        )
    )
    routing = project / "facebook-routing.yaml"
    routing.write_text(routing.read_text().replace("name: Known VIP customer", f'name: "{GROUP}"'))
    return project


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("output", ["text", "verbose", "markdown", "json"])
def test_no_plan_format_carries_a_runner_command(project, capsys, output):
    extra = {"verbose": ["-vv"], "text": []}.get(output, ["--format", output])
    code, out, err = run(capsys, "plan", "examples", "--env", "dev", *extra)
    assert code == 0, err
    assert not runnable(out + err)
    if output == "json":
        plan = json.loads(out)
        (queue,) = [c for c in plan["changes"] if c["address"] == "Queue/overflow-support"]
        assert {"path": "displayName", "after": ATTACK} in [
            {"path": f["path"], "after": f["after"]} for f in queue["fields"]
        ]
        assert GROUP in out.replace("\\u0023", "#")
    else:
        assert SHOWN in out


def test_a_saved_plan_written_neutral_still_loads_and_verifies(project, capsys):
    code, _, err = run(capsys, "plan", "examples", "--env", "dev", "--out", "plan.json")
    assert code == 0, err
    saved = Path("plan.json").read_text()
    neutral_copy = Path("neutral.json")
    neutral_copy.write_text(neutral.json_text(saved))
    assert not runnable(neutral_copy.read_text())
    assert "\\u0023#vso[" in neutral_copy.read_text()
    assert load_plan(neutral_copy) == load_plan("plan.json")  # same values, checksum verified


@pytest.fixture
def invalid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A manifest whose key and kind are runner commands: validation repeats them."""
    monkeypatch.chdir(tmp_path)
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "apiVersion: reconciler.omnichannel/v1\nkind: Queue\nmetadata: {name: q}\n"
        f'spec:\n  priority: 1\n  "{ATTACK}": 1\n---\n'
        f'apiVersion: reconciler.omnichannel/v1\nkind: "{GROUP}"\nmetadata: {{name: r}}\n'
    )
    return manifest


@pytest.mark.parametrize("output", ["text", "json", "github"])
def test_validate_repeats_a_hostile_key_without_the_command(invalid, capsys, output):
    code, out, err = run(capsys, "validate", str(invalid), "--format", output)
    assert code == 1
    assert not runnable(out + err)
    assert "unknown field" in out
    if output == "json":
        messages = [d["message"] for d in json.loads(out)["diagnostics"]]
        assert f"spec: unknown field '{ATTACK}'" in messages
    else:
        assert f"unknown field '{SHOWN}'" in out


def test_stderr_of_a_failing_plan_and_error_lines_carry_no_command(invalid, capsys):
    code, out, err = run(capsys, "plan", str(invalid), "--target", "local:x.db")
    assert code == 1
    assert f"unknown field '{SHOWN}'" in err
    assert not runnable(out + err)
    code, _, err = run(capsys, "validate", str(invalid), "--env", ATTACK)
    assert code == 1
    assert err.startswith(f"error: unknown environment '{SHOWN}'")
    assert not runnable(err)


def test_the_guard_catches_what_a_code_path_forgot(capsys, monkeypatch):
    """A renderer that writes a sequence raw, split over writes, on stdout and stderr."""
    streams = sys.stdout, sys.stderr

    def careless(args):
        sys.stdout.write("prefix #")
        sys.stdout.write("#v")
        print("so[task.complete result=Failed]x", flush=False)
        sys.stderr.write("##[error]boom\n")
        print("#", end="", flush=True, file=sys.stderr)
        sys.stderr.write("#[group]late\n")
        return 0

    monkeypatch.setattr("reconciler.cli.validate.run", careless)
    code, out, err = run(capsys, "validate")
    assert code == 0
    assert out == "prefix \\u0023#vso[task.complete result=Failed]x\n"
    assert err == "\\u0023#[error]boom\n\\u0023#[group]late\n"
    assert (sys.stdout, sys.stderr) == streams  # put back for the next command


def test_the_guard_keeps_the_terminal_look(capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    seen = {}

    def look(args):
        seen["tty"] = sys.stdout.isatty()
        seen["encoding"] = sys.stdout.encoding
        return 0

    monkeypatch.setattr("reconciler.cli.validate.run", look)
    assert main(["validate"]) == 0
    assert seen == {"tty": True, "encoding": sys.stdout.encoding}


def test_the_guard_works_under_fd_capture(capfd, monkeypatch):
    def careless(args):
        sys.stdout.write(ATTACK + "\n")
        return 0

    monkeypatch.setattr("reconciler.cli.validate.run", careless)
    assert main(["validate"]) == 0
    assert capfd.readouterr().out == SHOWN + "\n"
