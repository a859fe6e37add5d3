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
