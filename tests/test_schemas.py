"""The committed JSON Schemas match the models, pass ajv's strict mode, and the examples
validate against them."""

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_specifications
import pytest

from reconciler import schemagen
from reconciler.manifest.discover import discover
from reconciler.manifest.yaml_loader import load_file

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas"
EXAMPLES = ROOT / "examples"


@functools.cache  # checking a schema takes a fifth of a second: once per file
def validator(name: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@functools.cache
def generated() -> dict[str, dict[str, Any]]:
    return {name: json.loads(text) for name, text in schemagen.generate().items()}


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
    kind_schema = schemagen.file_name(data["kind"])
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


# --- ajv's strict mode (https://ajv.js.org/strict-mode.html), offline -----------------------
# `make lint-schemas` runs ajv itself; these are the rules it applied to pydantic's output.

VOCABULARY = "https://json-schema.org/draft/2020-12/meta/"
KEYWORDS = frozenset(
    keyword
    for uri, meta in jsonschema_specifications.REGISTRY.items()
    if uri.startswith(VOCABULARY)
    for keyword in meta.contents.get("properties", {})
)
# Keywords that apply to some types of value only, as ajv's strictTypes knows them, with the
# types that satisfy each (in the schema object or one that applies to the same value); ajv-formats
# defines `format` for strings and numbers. Object keywords want `type: object` in their own
# schema object, which is what schemagen writes.
NUMBER = frozenset({"number", "integer"})
ARRAY, STRING = frozenset({"array"}), frozenset({"string"})
APPLIES_TO = (
    dict.fromkeys(["items", "prefixItems", "contains", "minItems", "maxItems"], ARRAY)
    | dict.fromkeys(["uniqueItems", "minContains", "maxContains", "unevaluatedItems"], ARRAY)
    | dict.fromkeys(["minLength", "maxLength", "pattern"], STRING)
    | dict.fromkeys(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"], NUMBER)
    | {"multipleOf": NUMBER, "format": STRING | NUMBER}
)
SAME_VALUE = ("allOf", "anyOf", "oneOf", "not", "if", "then", "else")  # the same data location
# Formats ajv-formats 3 knows (https://github.com/ajv-validator/ajv-formats#formats).
AJV_FORMATS = {"date", "time", "date-time", "duration", "uri", "uri-reference", "email"}
AJV_FORMATS |= {"hostname", "ipv4", "ipv6", "regex", "uuid", "json-pointer", "byte"}


def types_of(schema: dict[str, Any]) -> set[str]:
    declared = schema.get("type", [])
    return set(declared if isinstance(declared, list) else [declared])


def walk(
    schema: dict[str, Any], path: str = "#", inherited: frozenset[str] = frozenset()
) -> Iterator[tuple[str, dict[str, Any], frozenset[str]]]:
    """Every schema object with its JSON pointer and the types its same-value parents state."""
    yield path, schema, inherited
    own = inherited | types_of(schema)
    for keyword, value in schema.items():
        same = own if keyword in SAME_VALUE else frozenset()
        if keyword == "propertyNames":  # what it applies to is a name: ajv knows it is a string
            same = frozenset({"string"})
        if keyword in schemagen.SUBSCHEMA and isinstance(value, dict):
            yield from walk(value, f"{path}/{keyword}", same)
        elif keyword in schemagen.SUBSCHEMA_LISTS:
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    yield from walk(item, f"{path}/{keyword}/{index}", same)
        elif keyword in schemagen.SUBSCHEMA_MAPS:
            for name, item in value.items():
                if isinstance(item, dict):
                    yield from walk(item, f"{path}/{keyword}/{name}", frozenset())


def strict_problems(schema: dict[str, Any]) -> list[str]:
    problems = []
    for path, node, inherited in walk(schema):
        own = types_of(node)
        problems += [
            f"{path}: {k} is not a draft 2020-12 keyword" for k in node if k not in KEYWORDS
        ]
        for keyword in APPLIES_TO.keys() & node.keys():
            if not APPLIES_TO[keyword] & (own | inherited):
                problems.append(f"{path}: {keyword} without type {sorted(APPLIES_TO[keyword])}")
        if schemagen.OBJECT_KEYWORDS & node.keys() and "object" not in own:
            problems.append(f"{path}: object keywords without type: object")
        if len(own - {"null"}) > 1:
            problems.append(f"{path}: union type {node['type']} (ajv: allowUnionTypes)")
        missing = [n for n in node.get("required", ()) if n not in node.get("properties", {})]
        if missing:
            problems.append(f"{path}: required {missing} not among its properties")
        if "prefixItems" in node and node.get("minItems") != len(node["prefixItems"]):
            problems.append(f"{path}: prefixItems without minItems (strictTuples)")
        if node.get("format", "date") not in AJV_FORMATS:
            problems.append(f"{path}: format {node['format']} unknown to ajv-formats")
    return problems


@pytest.mark.parametrize("name", sorted(generated()))
def test_each_schema_passes_ajv_strict_mode(name):
    schema = json.loads(json.dumps(generated()[name]))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == schemagen.DRAFT
    assert schema["$id"] == name  # resolves to the file itself, wherever it is read from
    assert strict_problems(schema) == []


def test_the_ids_are_unique():
    ids = [schema["$id"] for schema in generated().values()]
    assert len(set(ids)) == len(ids)


def test_the_checks_catch_what_ajv_refuses():
    pydantic_like = {
        "discriminator": {"propertyName": "kind"},
        "oneOf": [{"$ref": "#/$defs/A"}],
        "$defs": {"A": {"type": "object", "properties": {"required": {"type": "string"}}}},
        "if": {"properties": {"metadata": {"required": ["ensure"]}}},
        "else": {"required": ["spec"]},
        "properties": {"n": {"type": ["string", "integer"], "maxLength": 2}},
    }
    assert strict_problems(pydantic_like) == [
        "#: discriminator is not a draft 2020-12 keyword",
        "#: object keywords without type: object",
        "#/if: object keywords without type: object",
        "#/if/properties/metadata: object keywords without type: object",
        "#/if/properties/metadata: required ['ensure'] not among its properties",
        "#/else: object keywords without type: object",
        "#/else: required ['spec'] not among its properties",
        "#/properties/n: union type ['string', 'integer'] (ajv: allowUnionTypes)",
    ]
    fixed = schemagen._strict(json.loads(json.dumps(pydantic_like)))
    assert strict_problems(fixed) == [
        "#/properties/n: union type ['string', 'integer'] (ajv: allowUnionTypes)"
    ]
    assert "discriminator" not in fixed
    assert fixed["else"] == {"required": ["spec"], "type": "object", "properties": {"spec": True}}
    # a property named like a keyword is data, not a schema: left as it was
    assert fixed["$defs"]["A"]["properties"] == {"required": {"type": "string"}}
