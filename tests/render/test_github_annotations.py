"""``validate --format github``: GitHub workflow annotations, checked against the command syntax.

The parser below is written from GitHub's documentation of workflow commands (and the escaping
of its own toolkit, ``@actions/core``): ``::COMMAND k=v,k=v::DATA`` on one line; data escapes
``%``, CR and LF as ``%25``, ``%0D``, ``%0A``; property values escape ``:`` and ``,`` as well.
"""

import json
import re
from pathlib import Path

import pytest

from reconciler.cli import main
from reconciler.diagnostics import Diagnostic, Location, Severity
from reconciler.render.diagnostics import annotation, to_github

ROOT = Path(__file__).resolve().parents[2]
COMMAND = re.compile(r"^::(?P<command>error|warning|notice)(?: (?P<props>[^:]*))?::(?P<data>.*)$")
PROPERTIES = {"file", "line", "col", "endLine", "endColumn", "title"}


def _unescape(text: str, prop: bool) -> str:
    pairs = [("%0D", "\r"), ("%0A", "\n")] + ([("%3A", ":"), ("%2C", ",")] if prop else [])
    for escaped, plain in pairs:
        text = text.replace(escaped, plain)
    return text.replace("%25", "%")


def parse(line: str) -> dict[str, str]:
    """One annotation line → its command, properties and message; fails on anything else."""
    match = COMMAND.match(line)
    assert match, f"not a workflow annotation: {line!r}"
    assert "\n" not in line
    assert "\r" not in line
    parsed = {"command": match["command"], "message": _unescape(match["data"], prop=False)}
    for item in (match["props"] or "").split(","):
        key, sep, value = item.partition("=")
        assert sep, f"bad property {item!r} in {line!r}"
        assert key in PROPERTIES, f"bad property {item!r} in {line!r}"
        # A raw ':' or ',' inside a value would have split it: the escaping must prevent both.
        parsed[key] = _unescape(value, prop=True)
    return parsed


def test_each_diagnostic_is_one_annotation_that_parses_back_to_itself():
    hostile = Diagnostic(
        Severity.ERROR,
        "unknown-field",
        "spec: unknown field 'a,b:c'; 100% wrong\nsecond line ::error::injected",
        Location("dir, with: odd%names/q.yaml", 12, 7),
    )
    line = annotation(hostile)
    parsed = parse(line)
    assert parsed == {
        "command": "error",
        "file": "dir, with: odd%names/q.yaml",
        "line": "12",
        "col": "7",
        "title": "reconciler unknown-field",
        # A newline is printed escaped, as in the text format: it cannot start a new command.
        "message": "spec: unknown field 'a,b:c'; 100% wrong\\nsecond line ::error::injected",
    }
    assert line.count("\n") == 0


def test_a_warning_without_a_location_has_no_file_property():
    parsed = parse(annotation(Diagnostic(Severity.WARNING, "retired-channel", "gone")))
    assert parsed == {
        "command": "warning",
        "title": "reconciler retired-channel",
        "message": "gone",
    }


def test_the_summary_is_a_plain_log_line_after_the_annotations():
    text = to_github([Diagnostic(Severity.ERROR, "x", "m", Location("a.yaml", 1, 1))], 1, 1)
    lines = text.splitlines()
    assert parse(lines[0])["command"] == "error"
    assert lines[1] == "1 document in 1 file: 1 error, 0 warnings"
    assert not lines[1].startswith("::")


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "queues.yaml").write_text(
        "apiVersion: reconciler.omnichannel/v1\n"
        "kind: Queue\n"
        "metadata: {name: support}\n"
        "spec: {type: messaging, priorty: 3}\n"
        "---\n"
        "apiVersion: reconciler.omnichannel/v1\n"
        "kind: Workstream\n"
        "metadata: {name: chat}\n"
        "spec:\n"
        "  channel: facebook\n"
        "  fallbackQueue: nowhere\n"
        "  facebook: {account: fb, page: P, language: nl-NL}\n"
    )
    return tmp_path


def test_cli_annotations_carry_the_same_file_line_col_and_message_as_json(project, capsys):
    code = main(["validate", "manifests", "--format", "github"])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    annotations = [parse(line) for line in out[:-1]]
    assert out[-1].endswith("errors, 0 warnings")

    main(["validate", "manifests", "--format", "json"])
    expected = json.loads(capsys.readouterr().out)["diagnostics"]
    assert len(annotations) == len(expected) >= 3
    for got, want in zip(annotations, expected, strict=True):
        assert got["command"] == want["severity"]
        assert (got["file"], int(got["line"]), int(got["col"])) == (
            want["file"],
            want["line"],
            want["column"],
        )
        assert got["message"] == want["message"]
        assert got["title"] == f"reconciler {want['code']}"
    # The unknown key, at its own line and column.
    assert any(
        a["line"] == "4" and a["col"] == "25" and "did you mean 'priority'" in a["message"]
        for a in annotations
    )


def test_clean_manifests_print_only_warnings_and_exit_0(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code = main(["validate", "examples", "--format", "github"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert [parse(line)["command"] for line in out[:-1]] == ["warning", "warning"]
    assert parse(out[0])["file"] == "examples/google-business-messages.yaml"
