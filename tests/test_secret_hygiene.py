"""Secret values never reach any output, even when written (wrongly) into a manifest."""

import json

import pytest

from reconciler.cli import main
from reconciler.validate.pipeline import Options, validate

MARKERS = {
    "applicationSecret": "MARKER-app-secret-7f3a",
    "accessToken": "MARKER-page-token-91bc",
    "clientToken": "MARKER-gbm-client-token-55de",
    "serviceAccountKey": "MARKER-service-account-0a0a",
    "agentToken": "MARKER-agent-token-c4c4",
}

MANIFEST = f"""\
apiVersion: reconciler.omnichannel/v1
kind: FacebookAccount
metadata: {{name: fb}}
spec:
  applicationId: "1"
  applicationSecret: {MARKERS["applicationSecret"]}
  pages:
    - name: Page
      pageId: "2"
      accessToken: "{MARKERS["accessToken"]}"
---
apiVersion: reconciler.omnichannel/v1
kind: GoogleBusinessMessagesAccount
metadata: {{name: gbm}}
spec:
  partnerId: p
  clientToken: [{MARKERS["clientToken"]}]
  serviceAccountKey: {{value: {MARKERS["serviceAccountKey"]}}}
  agents:
    - {{name: a, agentId: a, brandId: b, clientToken: {MARKERS["agentToken"]}}}
---
apiVersion: reconciler.omnichannel/v1
kind: FacebookAccount
metadata: {{name: by-reference}}
spec:
  applicationId: "3"
  applicationSecret: {{fromEnv: HYGIENE_APP_SECRET}}
"""


@pytest.fixture
def manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("HYGIENE_APP_SECRET", "MARKER-from-environment-e1e1")
    path = tmp_path / "secrets.yaml"
    path.write_text(MANIFEST)
    return path


def assert_clean(text: str) -> None:
    for marker in [*MARKERS.values(), "MARKER-from-environment-e1e1"]:
        assert marker not in text


@pytest.mark.parametrize("extra", [[], ["--format", "json"], ["--debug"], ["-v"]])
def test_literal_secrets_are_refused_without_being_shown(manifest, capsys, extra):
    code = main(["validate", str(manifest), *extra])
    out, err = capsys.readouterr()
    assert code == 1
    assert_clean(out + err)
    text = (
        out
        if not extra or extra[0] != "--format"
        else "\n".join(d["message"] for d in json.loads(out)["diagnostics"])
    )
    # Every literal is refused (one serviceAccountKey literal is a mapping: unknown field).
    assert text.count("never a literal value") == 4
    assert "unknown field 'value'" in text


def test_diagnostic_objects_hold_no_secret(manifest):
    report = validate(Options(paths=[str(manifest)]))
    assert report.errors
    assert_clean(repr(report.diagnostics))
    assert_clean(repr(report.documents))


REFUSED = """\
apiVersion: reconciler.omnichannel/v1
kind: FacebookAccount
metadata: {name: fb}
spec:
  applicationId: "1"
  applicationSecret: {fromFile: ../elsewhere/outside.txt}
  pages:
    - {name: Linked, pageId: "2", accessToken: {fromFile: link.txt}}
    - {name: Pipeline, pageId: "3", accessToken: {fromEnv: GITHUB_TOKEN}}
"""


@pytest.mark.parametrize("command", ["validate", "plan"])
@pytest.mark.parametrize("extra", [[], ["--debug"], ["-vv"]])
def test_refused_references_are_named_and_never_read(tmp_path, monkeypatch, capsys, command, extra):
    """A file outside the project and a credential variable: named in the message, their
    values in no output, whatever the verbosity (docs/troubleshooting.md)."""
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "outside.txt").write_text("MARKER-outside-file-b2b2\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "link.txt").symlink_to("../elsewhere/outside.txt")
    (project / "fb.yaml").write_text(REFUSED)
    monkeypatch.setenv("GITHUB_TOKEN", "MARKER-pipeline-token-d3d3")
    monkeypatch.chdir(tmp_path)
    target = ["--target", "local:t.db"] if command == "plan" else []
    code = main([command, "project", *target, *extra])
    out, err = capsys.readouterr()
    assert code == 1
    for marker in ["MARKER-outside-file-b2b2", "MARKER-pipeline-token-d3d3"]:
        assert marker not in out + err
    assert "secret file ../elsewhere/outside.txt is outside the project folder" in out + err
    assert "secret file link.txt is outside the project folder" in out + err
    assert "fromEnv names GITHUB_TOKEN" in out + err
    assert not (tmp_path / "t.db").exists()
