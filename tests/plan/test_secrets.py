"""Secret references resolve to Sensitive values; problems name the reference, not the value."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from reconciler.manifest.document import Document
from reconciler.manifest.yaml_loader import load_file
from reconciler.models.common import FromEnv, FromFile
from reconciler.models.manifest import FacebookAccountManifest
from reconciler.plan.secrets import SecretResolver

MANIFEST = """\
apiVersion: reconciler.omnichannel/v1
kind: FacebookAccount
metadata: {name: shop}
spec:
  applicationId: "1"
  applicationSecret: {fromFile: secret.txt}
"""


@pytest.fixture
def document(tmp_path: Path) -> Document:
    path = tmp_path / "fb.yaml"
    path.write_text(MANIFEST)
    (source,) = load_file(str(path)).documents
    return Document(source, FacebookAccountManifest.model_validate(source.data))


def resolve(
    document: Document,
    ref: FromEnv | FromFile,
    field: str = "applicationSecret",
    environ: dict[str, str] | None = None,
):
    resolver = SecretResolver(environ or {})
    return resolver(ref, document, ("spec", field)), resolver.problems


def test_from_env(document):
    value, problems = resolve(document, FromEnv(fromEnv="APP"), environ={"APP": "s3cret"})
    assert problems == []
    assert value.reveal() == "s3cret"
    assert value.source == "env:APP"
    assert "s3cret" not in repr(value)


def test_a_missing_variable_is_an_error_at_the_reference(document):
    value, (problem,) = resolve(document, FromEnv(fromEnv="NOPE"))
    assert value is None
    assert str(problem) == (
        f"{document.source.file}:6:3: error: spec.applicationSecret: environment variable NOPE "
        "is not set"
    )


def test_from_file_is_relative_to_the_manifest_and_drops_one_trailing_newline(document):
    Path(document.source.file).with_name("secret.txt").write_text("from-file\n")
    value, problems = resolve(document, FromFile(fromFile="secret.txt"))
    assert problems == []
    assert value.reveal() == "from-file"
    assert value.source.startswith("file:")
    assert value.source.endswith("secret.txt")


def test_the_service_account_key_is_sent_as_base64_of_the_file(document):
    raw = b'{"type": "service_account"}\n'
    Path(document.source.file).with_name("key.json").write_bytes(raw)
    value, problems = resolve(document, FromFile(fromFile="key.json"), "serviceAccountKey")
    assert problems == []
    assert base64.b64decode(value.reveal()) == raw


def test_a_missing_file_is_an_error_naming_the_file(document):
    value, (problem,) = resolve(document, FromFile(fromFile="gone.txt"))
    assert value is None
    assert "cannot read secret file" in problem.message
    assert "gone.txt: No such file or directory" in problem.message


@pytest.mark.parametrize(
    ("content", "field", "message"),
    [
        (b"", "applicationSecret", "is empty"),
        (b"  \n", "applicationSecret", "is empty"),
        (b"\xff\xfe", "applicationSecret", "is not UTF-8 text"),
        (b"x" * 101, "applicationSecret", "is 101 characters long; Dataverse holds at most 100"),
        (b"x" * 501, "accessToken", "is 501 characters long; Dataverse holds at most 500"),
        (b"x" * 6001, "serviceAccountKey", "is 8004 characters long; Dataverse holds at most 8000"),
    ],
)
def test_values_dataverse_cannot_hold_are_refused_without_showing_them(
    document, content, field, message
):
    Path(document.source.file).with_name("bad").write_bytes(content)
    value, (problem,) = resolve(document, FromFile(fromFile="bad"), field)
    assert value is None
    assert message in problem.message
    assert problem.message.startswith(f"spec.{field}: the secret from file:")
    if content.strip():
        assert content.decode("utf-8", "replace") not in problem.message


def test_a_secret_file_must_be_a_regular_file_of_reasonable_size(document, tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe")  # reading it would block the plan for ever
    value, (problem,) = resolve(document, FromFile(fromFile="pipe"))
    assert value is None
    assert "is not a regular file" in problem.message
    (tmp_path / "huge.txt").write_bytes(b"x" * (64 * 1024 + 1))
    value, (problem,) = resolve(document, FromFile(fromFile="huge.txt"))
    assert value is None
    assert "larger than 65536 bytes" in problem.message
