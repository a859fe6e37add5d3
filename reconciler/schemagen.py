"""JSON Schemas for editors and CI, generated from the models (committed under ``schemas/``).

pydantic writes schemas for its own validator and for OpenAPI, not for JSON Schema's strict
consumers. ``_strict`` turns its output into schemas that ajv compiles in strict mode under
draft 2020-12 (https://ajv.js.org/strict-mode.html), as editors and CI linters run them:

- no keyword outside draft 2020-12's vocabularies: pydantic's ``discriminator`` is OpenAPI's
  (https://spec.openapis.org/oas/v3.1.0#discriminator-object); the ``oneOf`` beside it already
  picks the one branch whose ``kind`` const matches, so dropping it changes nothing validated;
- every keyword that applies to one type of value states that type: a ``required`` or
  ``properties`` without ``type: object`` (as in the if/else that makes ``spec`` optional for
  ``ensure: absent``) is what ajv's ``strictTypes`` refuses;
- every name a schema object lists in ``required`` is one of its own ``properties``
  (``strictRequired``; ajv compiles that ``else`` before the ``properties`` beside the ``if``).

``make lint-schemas`` runs ajv itself; tests/test_schemas.py checks the same rules offline.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, TypeAdapter

from reconciler.models.manifest import MANIFEST_TYPES, AnyManifest
from reconciler.models.project import Project
from reconciler.plan.definition import Plan

DRAFT = "https://json-schema.org/draft/2020-12/schema"
MANIFEST_SCHEMA = "manifest.schema.json"
PROJECT_SCHEMA = "project.schema.json"
PLAN_SCHEMA = "plan.schema.json"

# Where draft 2020-12 keeps subschemas (https://json-schema.org/draft/2020-12/json-schema-core):
# only these are walked, so data such as a ``const``, a ``default`` or a property *named*
# "required" is never taken for a schema.
SUBSCHEMA = frozenset(
    {
        "additionalProperties",
        "contains",
        "contentSchema",
        "else",
        "if",
        "items",
        "not",
        "propertyNames",
        "then",
        "unevaluatedItems",
        "unevaluatedProperties",
    }
)
SUBSCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
SUBSCHEMA_MAPS = frozenset({"$defs", "dependentSchemas", "patternProperties", "properties"})
OBJECT_KEYWORDS = frozenset(
    {
        "additionalProperties",
        "dependentRequired",
        "dependentSchemas",
        "maxProperties",
        "minProperties",
        "patternProperties",
        "properties",
        "propertyNames",
        "required",
        "unevaluatedProperties",
    }
)
NOT_JSON_SCHEMA = frozenset({"discriminator"})  # OpenAPI's, unknown to draft 2020-12


def file_name(kind: str) -> str:
    """``RoutingRuleSet`` → ``routing-rule-set.schema.json``."""
    words = "".join(f"-{c.lower()}" if c.isupper() else c for c in kind).lstrip("-")
    return f"{words}.schema.json"


def subschemas(schema: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """The schema objects directly inside ``schema`` (not their own subschemas)."""
    for keyword, value in schema.items():
        if keyword in SUBSCHEMA and isinstance(value, dict):
            yield value
        elif keyword in SUBSCHEMA_LISTS and isinstance(value, list):
            yield from (item for item in value if isinstance(item, dict))
        elif keyword in SUBSCHEMA_MAPS and isinstance(value, dict):
            yield from (item for item in value.values() if isinstance(item, dict))


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` as ajv's strict mode takes it (see the module docstring), changed in place:
    pass a copy (pydantic's output shares the dicts of a model's ``json_schema_extra``)."""
    for keyword in NOT_JSON_SCHEMA & schema.keys():
        del schema[keyword]
    if "type" not in schema and OBJECT_KEYWORDS & schema.keys():
        schema["type"] = "object"
    named = schema.get("properties", {})
    unnamed = [name for name in schema.get("required", ()) if name not in named]
    if unnamed:  # `true`: any value, as before; the property is only named here
        schema["properties"] = named | dict.fromkeys(unnamed, True)
    for inner in subschemas(schema):
        _strict(inner)
    return schema


def _finish(name: str, schema: dict[str, Any], title: str, description: str) -> dict[str, Any]:
    # `$id` is the file's own name: a relative URI reference, which resolves against wherever
    # the file is read from (schemas/, an export's .schemas/) to that file itself, so it names
    # the schema without claiming a download location (there is no published copy), and tools
    # that take the retrieval URI as the base (yaml-language-server, ajv) agree on it.
    head = {"$schema": DRAFT, "$id": name, "title": title, "description": description}
    rest = {key: value for key, value in schema.items() if key not in head}
    return _strict(copy.deepcopy(head | rest))


def generate() -> dict[str, str]:
    """File name → schema text, in a stable order."""
    schemas: dict[str, dict[str, Any]] = {}
    for kind, model in MANIFEST_TYPES.items():
        name = file_name(kind)
        schemas[name] = _finish(
            name,
            model.model_json_schema(mode="validation"),
            kind,
            f"A reconciler manifest document of kind {kind}.",
        )
    schemas[MANIFEST_SCHEMA] = _finish(
        MANIFEST_SCHEMA,
        TypeAdapter(AnyManifest).json_schema(mode="validation"),
        "Manifest",
        "Any reconciler manifest document (selected by kind).",
    )
    project: type[BaseModel] = Project
    schemas[PROJECT_SCHEMA] = _finish(
        PROJECT_SCHEMA,
        project.model_json_schema(mode="validation"),
        "Project",
        "The project file reconciler.yaml: namespace, safety, policy and environments.",
    )
    plan: type[BaseModel] = Plan
    schemas[PLAN_SCHEMA] = _finish(
        PLAN_SCHEMA,
        plan.model_json_schema(mode="serialization"),
        "Plan",
        "A reconciler plan (plan --format json, plan --out FILE), format_version 1.",
    )
    return {
        name: json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        for name, schema in schemas.items()
    }


def write(directory: str) -> list[str]:
    os.makedirs(directory, exist_ok=True)
    written = []
    for name, text in generate().items():
        path = os.path.join(directory, name)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        written.append(path)
    return written
