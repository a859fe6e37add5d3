"""The committed JSON Schemas match the models, and the examples validate against them."""

import json
from pathlib import Path

import jsonschema
import pytest

from reconciler import schemagen
from reconciler.manifest.discover import discover
from reconciler.manifest.yaml_loader import load_file

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas"
EXAMPLES = ROOT / "examples"


def validator(name: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schemas_match_the_models():
    generated = schemagen.generate()
    committed = {path.name: path.read_text() for path in SCHEMAS.glob("*.json")}
    assert sorted(committed) == sorted(generated), "run `make schemas`"
    for name, text in generated.items():
        assert committed[name] == text, f"schemas/{name} is out of date: run `make schemas`"


def example_manifests() -> list[Path]:
    """The example manifests as validate finds them (the CI examples sit in hidden folders)."""
    found = discover([str(EXAMPLES)])
    assert len(found.manifests) >= 4
    return [Path(path) for path in found.manifests]


def example_documents():
    for path in example_manifests():
        for document in load_file(str(path)).documents:
            yield pytest.param(document.data, id=f"{path.name}#{document.index}")


@pytest.mark.parametrize("data", list(example_documents()))
def test_examples_validate_against_the_manifest_schema(data):
    errors = [e.message for e in validator("manifest.schema.json").iter_errors(data)]
    assert errors == []
    kind_schema = schemagen._file_name(data["kind"])
    assert [e.message for e in validator(kind_schema).iter_errors(data)] == []


def test_the_example_project_file_validates_against_its_schema():
    (document,) = load_file(str(EXAMPLES / "reconciler.yaml")).documents
    assert list(validator("project.schema.json").iter_errors(document.data)) == []


def test_examples_point_editors_at_the_schemas():
    for path in [*example_manifests(), EXAMPLES / "reconciler.yaml"]:
        first = path.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema=../schemas/"), path
        target = (path.parent / first.split("$schema=")[1]).resolve()
        assert target.is_file(), first


@pytest.mark.parametrize(
    "broken",
    [
        {"spec": {"priority": 1, "priorty": 2}},
        {"spec": {"priority": 0}},
        {"spec": {"priority": 1, "type": "email"}},
        {"metadata": {"name": "Not_Valid"}},
        {"spec": None},
    ],
)
def test_the_schema_rejects_what_validate_rejects(broken):
    queue = {"apiVersion": "reconciler.omnichannel/v1", "kind": "Queue", "metadata": {"name": "q"}}
    queue.update({"spec": {"priority": 1}} | broken)
    if queue["spec"] is None:
        del queue["spec"]
    assert list(validator("manifest.schema.json").iter_errors(queue)) != []


def test_the_schema_rejects_literal_secrets():
    account = {
        "apiVersion": "reconciler.omnichannel/v1",
        "kind": "FacebookAccount",
        "metadata": {"name": "fb"},
        "spec": {"applicationId": "1", "applicationSecret": "literal"},
    }
    assert list(validator("facebook-account.schema.json").iter_errors(account)) != []
    account["spec"]["applicationSecret"] = {"fromEnv": "FB_APP_SECRET"}
    assert list(validator("facebook-account.schema.json").iter_errors(account)) == []


def test_schema_command_writes_the_same_files(tmp_path):
    from reconciler.cli import main

    assert main(["schema", "--out", str(tmp_path)]) == 0
    for name, text in schemagen.generate().items():
        assert (tmp_path / name).read_text() == text
