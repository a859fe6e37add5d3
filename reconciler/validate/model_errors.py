"""Pydantic validation errors → diagnostics at the exact ``file:line:column``.

Error locations use manifest keys (aliases) and list indexes, plus tags that name union
members (``<leaf>``, ``function-after[...]``). Walking the location alongside the document's
data keeps the parts that exist in the data and drops the rest, which gives the manifest path.
Messages never include the offending input: it may be a secret written where it does not belong.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

from pydantic import BaseModel, ValidationError

from reconciler.diagnostics import Diagnostic, did_you_mean, error
from reconciler.manifest.yaml_loader import PathKey, SourceDocument

_CODES = {
    "missing": "missing-field",
    "extra_forbidden": "unknown-field",
    "literal_error": "invalid-choice",
    "enum": "invalid-choice",
    "string_too_long": "string-too-long",
    "too_long": "too-many-items",
}

_MESSAGES = {
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "list_type": "must be a list",
    "date_type": "must be a date (YYYY-MM-DD)",
    "date_parsing": "must be a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "must be a date (YYYY-MM-DD)",
    "date_from_datetime_inexact": "must be a date (YYYY-MM-DD) without a time",
    "uuid_type": "must be a GUID",
    "uuid_parsing": "must be a GUID",
    "string_too_short": "must not be empty",
    "union_tag_invalid": "is not one of the accepted forms",
}


def format_path(path: PathKey) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _data_path(data: Any, loc: tuple[str | int, ...]) -> tuple[PathKey, Any]:
    """The part of ``loc`` that exists in ``data``, and the value found there."""
    path: list[str | int] = []
    node = data
    for part in loc:
        in_mapping = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_mapping or in_list:
            node = node[part]
            path.append(part)
    return tuple(path), node


def _expand(schema: dict[str, Any], root: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "$ref" in schema:
        yield from _expand(root["$defs"][schema["$ref"].rsplit("/", 1)[-1]], root)
        return
    yield schema
    for combinator in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(combinator, []):
            yield from _expand(branch, root)


@cache
def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(mode="validation")


def _known_keys(model: type[BaseModel], path: PathKey) -> list[str]:
    """The keys the schema allows at ``path`` (for "did you mean" hints)."""
    root = _schema(model)
    nodes = [root]
    for part in path:
        following: list[dict[str, Any]] = []
        for node in (n for top in nodes for n in _expand(top, root)):
            if isinstance(part, int):
                if isinstance(node.get("items"), dict):
                    following.append(node["items"])
            elif part in node.get("properties", {}):
                following.append(node["properties"][part])
            elif isinstance(node.get("additionalProperties"), dict):
                following.append(node["additionalProperties"])
        nodes = following
    keys = {key for top in nodes for n in _expand(top, root) for key in n.get("properties", {})}
    return sorted(keys)


def _message(err: Any, name: str, value: Any) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        hint = f" ({ctx['hint']})" if "hint" in ctx else ""
        return f"missing required field '{name}'{hint}"
    if kind == "extra_forbidden":
        return f"unknown field '{name}'"
    if kind in ("literal_error", "enum"):
        return f"must be {ctx.get('expected', 'one of the allowed values')}"
    if kind == "string_too_long":
        length = f" (is {len(value)})" if isinstance(value, str) else ""
        return f"must be at most {ctx['max_length']} characters{length}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {
            "greater_than_equal": ("at least", "ge"),
            "greater_than": ("greater than", "gt"),
            "less_than_equal": ("at most", "le"),
            "less_than": ("less than", "lt"),
        }[kind]
        return f"must be {words[0]} {ctx[words[1]]}"
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    message = str(err["msg"])
    message = message.removeprefix("Value error, ")
    if message.startswith("Input should"):
        message = "should" + message[len("Input should") :]
    return message


def model_diagnostics(
    exc: ValidationError, source: SourceDocument, model: type[BaseModel]
) -> list[Diagnostic]:
    """One diagnostic per pydantic error, located in ``source``."""
    out: list[Diagnostic] = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = tuple(err["loc"])
        path, value = _data_path(source.data, loc)
        kind = err["type"]
        name = str(loc[-1]) if loc else ""
        message = _message(err, name, value)
        shown = format_path(path)
        if kind == "extra_forbidden":
            message += did_you_mean(name, _known_keys(model, path[:-1]), cutoff=0.75)
            shown = format_path(path[:-1])
        elif kind == "missing" and path[-1:] == (name,):
            # The key is written but empty (``spec:``): point at it, name it once.
            shown = format_path(path[:-1])
        code = _CODES.get(kind, kind if "-" in kind else "invalid-value")
        text = f"{shown}: {message}" if shown else message
        out.append(error(code, text, source.location(path)))
    return out
