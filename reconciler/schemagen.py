"""JSON Schemas for editors and CI, generated from the models (committed under ``schemas/``)."""

from __future__ import annotations

import json
import os
from typing import Any

from pydantic import BaseModel, TypeAdapter

from reconciler.models.manifest import MANIFEST_TYPES, AnyManifest
from reconciler.models.project import Project
from reconciler.plan.definition import Plan

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _file_name(kind: str) -> str:
    words = "".join(f"-{c.lower()}" if c.isupper() else c for c in kind).lstrip("-")
    return f"{words}.schema.json"


def _finish(schema: dict[str, Any], title: str, description: str) -> dict[str, Any]:
    return {"$schema": DRAFT, "title": title, "description": description} | {
        key: value for key, value in schema.items() if key not in ("title", "description")
    }


def generate() -> dict[str, str]:
    """File name → schema text, in a stable order."""
    schemas: dict[str, dict[str, Any]] = {}
    for kind, model in MANIFEST_TYPES.items():
        schemas[_file_name(kind)] = _finish(
            model.model_json_schema(mode="validation"),
            kind,
            f"A reconciler manifest document of kind {kind}.",
        )
    schemas["manifest.schema.json"] = _finish(
        TypeAdapter(AnyManifest).json_schema(mode="validation"),
        "Manifest",
        "Any reconciler manifest document (selected by kind).",
    )
    project: type[BaseModel] = Project
    schemas["project.schema.json"] = _finish(
        project.model_json_schema(mode="validation"),
        "Project",
        "The project file reconciler.yaml: namespace, safety, policy and environments.",
    )
    plan: type[BaseModel] = Plan
    schemas["plan.schema.json"] = _finish(
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
