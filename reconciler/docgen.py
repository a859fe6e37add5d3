"""The "Writing manifests" page, ``docs/manifests.md``, generated from the models.

``python -m reconciler.docgen`` (``make docs``) writes it. Its field tables are read off the
JSON Schemas that ``schemagen`` builds from the models (``$ref``s resolved, unions put in
words), and its examples are read from ``examples/``, so the page cannot drift from either:
``tests/test_field_reference.py`` fails when the committed page differs from what this writes.

One row per field, at every depth: its manifest path (``spec.pages[].accessToken``, a map's
entries as ``<name>``), its type in plain words, whether it is required (or its default), its
constraints, and the description given on the model field.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler import schemagen
from reconciler.manifest.yaml_loader import load_text
from reconciler.models.common import API_VERSION, DURATION_PATTERN, ENV_NAME_PATTERN, NAME_PATTERN
from reconciler.models.manifest import MANIFEST_TYPES
from reconciler.models.project import TARGET_PATTERN, VARIABLE_NAME_PATTERN
from reconciler.models.routing import (
    CONTEXT_FIELDS,
    CONVERSATION_CONTEXT,
    FIELD_PATTERN,
    OUTPUT_PATTERN,
    VARIABLE_CONTEXT,
)
from reconciler.models.workstream import LOCALE_PATTERN

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join("docs", "manifests.md")
EXAMPLES = "examples"

MANIFEST_SCHEMA = "manifest.schema.json"
PROJECT_SCHEMA = "project.schema.json"
ENVELOPE = "Every document"
PROJECT = "The project file: reconciler.yaml"

# The example shown for each kind: a file under examples/ and the documents (by name) to take.
# An AutomatedMessage cannot be applied yet, so its example is not among the examples/ a plan
# reads: it lives beside the page that says why (docs/automated-messages.md).
KIND_EXAMPLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "Queue": ("queues.yaml", ("vip-support",)),
    "FacebookAccount": ("facebook.yaml", ("contoso-facebook",)),
    "GoogleBusinessMessagesAccount": ("google-business-messages.yaml", ("contoso-gbm",)),
    "CapacityProfile": ("chat.yaml", ("chat-profile",)),
    "Workstream": ("facebook.yaml", ("facebook-support",)),
    "RoutingRuleSet": (
        "facebook-routing.yaml",
        ("facebook-support-routing", "facebook-support-classification"),
    ),
    "AutomatedMessage": ("../docs/automated-message.yaml", ("web-chat-agent-assigned",)),
}
PROJECT_EXAMPLE = "reconciler.yaml"

_DASH = "\N{EN DASH}"
_ENVELOPE_ORDER = ("apiVersion", "kind", "metadata", "spec")
_DIGITS = "^[0-9]+$"
_SCHEMA_COMMENT = "# yaml-language-server:"
# Unions of these models read better under one noun.
_UNION_NOUNS = {
    frozenset({"FromEnv", "FromFile"}): ("secret reference", "secret references"),
    frozenset({"AllOf", "AnyOf", "NotOf", "Leaf"}): ("condition", "conditions"),
}
_KIND_RE = re.compile(r"\b(" + "|".join(sorted(MANIFEST_TYPES, key=len, reverse=True)) + r")\b")
_CONDITION_FIELDS = ", ".join(
    f"`{context}.{name}`" for context, names in CONTEXT_FIELDS.items() for name in names
)
# String patterns the models use, in words: (type, constraint).
_PATTERNS: dict[str, tuple[str, str]] = {
    NAME_PATTERN: (
        "name",
        f"1{_DASH}63 characters: lowercase letters, digits and `-`, starting and ending with "
        "a letter or digit",
    ),
    DURATION_PATTERN: (
        "duration",
        "days `d`, hours `h` and minutes `m`, in that order (`1d12h`); more than zero",
    ),
    LOCALE_PATTERN: ("locale code", "a language code and region, such as `nl-NL`"),
    FIELD_PATTERN: (
        "condition field",
        f"one of {_CONDITION_FIELDS}, `{VARIABLE_CONTEXT}.<variable>` or "
        f"`{CONVERSATION_CONTEXT}.<attribute>`",
    ),
    TARGET_PATTERN: (
        "target",
        "`local`, `local:PATH`, `http://HOST:PORT` or `https://ORG.crmN.dynamics.com`",
    ),
    ENV_NAME_PATTERN: ("string", "letters, digits and `_`, not starting with a digit"),
    VARIABLE_NAME_PATTERN: ("string", "letters, digits and `_`, not starting with a digit"),
    OUTPUT_PATTERN: (
        "output",
        "a context variable of the workstream, or `conversation.<attribute>`",
    ),
}


@dataclass(frozen=True)
class Row:
    """One field of a table."""

    path: str
    type: str
    presence: str
    constraints: str
    description: str


@dataclass(frozen=True)
class Section:
    title: str
    rows: tuple[Row, ...]
    intro: str = ""
    example: str = ""
    example_source: str = ""


# --- schemas → rows ----------------------------------------------------------------------------


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _words_list(items: Sequence[str], last: str = "or") -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"


def _code(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return f"`{text}`"


def _range(low: Any, high: Any, unit: str, units: str) -> str:
    if low is not None and high is not None:
        return f"{low}{_DASH}{high} {units}" if units else f"{low}{_DASH}{high}"
    if high is not None:
        return f"at most {high} {units if high != 1 else unit}".rstrip()
    if low == 1 and unit:
        return f"at least 1 {unit}"
    return f"at least {low} {units}".rstrip() if units else f"≥ {low}"


class _Walker:
    """Rows for the properties of one JSON Schema (its ``$defs`` resolved)."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.defs: Mapping[str, Any] = schema.get("$defs", {})

    # -- resolving ---------------------------------------------------------------------------

    def plain(self, node: Mapping[str, Any]) -> tuple[dict[str, Any], frozenset[str]]:
        """``node`` with its ``$ref`` resolved (its own keys win) and a null alternative
        dropped; with the names of the definitions it went through."""
        names: frozenset[str] = frozenset()
        result = dict(node)
        if "$ref" in result:
            name = result.pop("$ref").removeprefix("#/$defs/")
            result = {**self.defs[name], **result}
            names = frozenset({name})
        alternatives = result.get("anyOf")
        if alternatives and {"type": "null"} in alternatives:
            rest = [alt for alt in alternatives if alt != {"type": "null"}]
            outer = {key: value for key, value in result.items() if key != "anyOf"}
            if len(rest) == 1:
                inner, more = self.plain(rest[0])
                return {**inner, **outer}, names | more
            result = {**outer, "anyOf": rest}
        return result, names

    def alternatives(self, node: Mapping[str, Any]) -> list[tuple[dict[str, Any], frozenset[str]]]:
        return [self.plain(alt) for alt in node.get("oneOf", node.get("anyOf", []))]

    @staticmethod
    def union_key(node: Mapping[str, Any]) -> frozenset[str]:
        alternatives = node.get("oneOf", node.get("anyOf", []))
        return frozenset(
            alt["$ref"].removeprefix("#/$defs/") for alt in alternatives if "$ref" in alt
        )

    @staticmethod
    def map_value(node: Mapping[str, Any]) -> tuple[Mapping[str, Any], str | None] | None:
        """The schema of a map's values and the pattern of its keys, if ``node`` is a map."""
        if isinstance(node.get("additionalProperties"), dict):
            return node["additionalProperties"], None
        patterns = node.get("patternProperties")
        if patterns:
            ((pattern, value),) = patterns.items()
            return value, pattern
        return None

    # -- rows --------------------------------------------------------------------------------

    def rows(
        self,
        obj: Mapping[str, Any],
        prefix: str,
        stack: tuple[frozenset[str], ...] = (),
        in_form: bool = False,
        stop: frozenset[str] = frozenset(),
    ) -> list[Row]:
        """A row for each property of ``obj``, each followed by the rows of its fields."""
        required = set(obj.get("required", ()))
        conditional = _conditional_requirements(obj)
        out: list[Row] = []
        for name, prop in obj.get("properties", {}).items():
            path = _join(prefix, name)
            node, names = self.plain(prop)
            if name in required:
                presence = "required in this form" if in_form else "required"
            elif name in conditional:
                presence = conditional[name]
            elif node.get("default") is not None:
                presence = f"default {_code(node['default'])}"
            else:
                presence = "optional"
            description = str(node.get("description", ""))
            out.append(
                Row(
                    path,
                    self.words(node, description),
                    presence,
                    "; ".join(self.constraints(node, description)),
                    description,
                )
            )
            if name not in stop:
                out.extend(self.children(node, names, path, stack))
        return out

    def children(
        self,
        node: Mapping[str, Any],
        names: frozenset[str],
        path: str,
        stack: tuple[frozenset[str], ...],
    ) -> list[Row]:
        """The rows inside a value: an object's fields, list items', map values', or those of
        each form of a union. A model met again inside itself is not walked again."""
        if names and names in stack:
            return []
        stack = (*stack, names) if names else stack
        if "properties" in node:
            return self.rows(node, path, stack)
        if node.get("type") == "array":
            items, item_names = self.plain(node["items"])
            return self.children(items, item_names, f"{path}[]", stack)
        entry = self.map_value(node)
        if entry is not None:
            value, value_names = self.plain(entry[0])
            return self.children(value, value_names, f"{path}.<name>", stack)
        key = self.union_key(node)
        if key and key in stack:
            return []
        out: list[Row] = []
        for alternative, alt_names in self.alternatives(node):
            inner = (*stack, key)
            if "properties" in alternative:
                out.extend(self.rows(alternative, path, (*inner, alt_names), in_form=True))
            else:
                out.extend(self.children(alternative, alt_names, path, inner))
        return out

    # -- words -------------------------------------------------------------------------------

    def words(self, node: Mapping[str, Any], description: str = "", plural: bool = False) -> str:
        """The type of a value in plain words."""
        if "const" in node:
            return _code(node["const"])
        if "enum" in node:
            values = _words_list([_code(value) for value in node["enum"]])
            return f"values from {values}" if plural else f"one of {values}"
        if "oneOf" in node or "anyOf" in node:
            return self.union_words(node, description, plural)
        kind = node.get("type")
        if kind == "string":
            text = self.string_words(node, description, plural)
        elif kind == "array":
            items = self.plain(node["items"])[0]
            if "properties" in items:
                text = f"list of `{{{', '.join(items['properties'])}}}` objects"
            else:
                text = f"list of {self.words(items, description, plural=True)}"
        elif kind == "object":
            entry = self.map_value(node)
            if entry is None:
                text = "objects" if plural else "object"
            else:
                value = self.words(self.plain(entry[0])[0], description)
                text = f"maps of name → {value}" if plural else f"map of name → {value}"
        else:
            noun = {"integer": "integer", "number": "number", "boolean": "boolean"}[str(kind)]
            text = f"{noun}s" if plural else noun
        if node.get("examples"):
            text += f" (e.g. {', '.join(_code(example) for example in node['examples'])})"
        return text

    def string_words(self, node: Mapping[str, Any], description: str, plural: bool) -> str:
        pattern = node.get("pattern")
        if pattern == NAME_PATTERN and (found := _KIND_RE.search(description)):
            text = f"reference to a {found.group(1)} (its metadata.name)"
            return f"references to a {found.group(1)}" if plural else text
        if node.get("format") == "uuid":
            noun = "UUID"
        elif node.get("format") == "date":
            noun = "date (YYYY-MM-DD)"
        else:
            noun = _PATTERNS.get(pattern, ("string", ""))[0] if pattern else "string"
        return f"{noun}s" if plural and noun[-1] != ")" else noun

    def union_words(self, node: Mapping[str, Any], description: str, plural: bool) -> str:
        alternatives = self.alternatives(node)
        nouns = _UNION_NOUNS.get(self.union_key(node))
        if nouns is not None:
            forms = _words_list([self.form(alt) for alt, _ in alternatives])
            return nouns[1] if plural else f"{nouns[0]}: {forms}"
        if any(alt.get("pattern") == _DIGITS for alt, _ in alternatives):
            return "digits (quoted, or a number)"
        scalars = [alt["type"] for alt, _ in alternatives if _plain_scalar(alt)]
        parts = [_scalar_words(scalars)] if scalars else []
        for alt, _ in alternatives:
            if _plain_scalar(alt):
                continue
            items = self.plain(alt["items"])[0] if alt.get("type") == "array" else {}
            same = [self.plain(item)[0] for item in items.get("anyOf", ())]
            if scalars and same and all(_plain_scalar(item) for item in same):
                parts.append("a list of these")
            else:
                parts.append(self.words(alt, description, plural))
        joiner = ", or " if any(" or " in part for part in parts) else " or "
        return joiner.join(parts)

    def form(self, alternative: Mapping[str, Any]) -> str:
        """How one form of a union is written: ``{fromEnv: …}``, ``{field, op, value}``."""
        properties: Mapping[str, Any] = alternative.get("properties", {})
        required = alternative.get("required", [])
        if len(required) == 1 and len(properties) == 1:
            (name,) = required
            value, _ = self.plain(properties[name])
            shape = "[...]" if value.get("type") == "array" else "..."
            return f"`{{{name}: {shape}}}`"
        return f"`{{{', '.join(properties)}}}`"

    # -- constraints -------------------------------------------------------------------------

    def constraints(self, node: Mapping[str, Any], description: str = "") -> list[str]:
        out: list[str] = []
        if "oneOf" in node or "anyOf" in node:
            alternatives = self.alternatives(node)
            digits = [alt for alt, _ in alternatives if alt.get("pattern") == _DIGITS]
            if digits:
                return [_range(None, digits[0].get("maxLength"), "digit", "digits")]
            for alternative, _ in alternatives:
                found = self.constraints(alternative, description)
                is_list = alternative.get("type") == "array"
                out.extend(f"a list has {text}" if is_list else text for text in found)
            return out
        if "minLength" in node or "maxLength" in node:
            low, high = node.get("minLength"), node.get("maxLength")
            out.append(
                "not empty" if (low, high) == (1, None) else _range(low, high, "", "characters")
            )
        if "minimum" in node or "maximum" in node:
            out.append(_range(node.get("minimum"), node.get("maximum"), "", ""))
        if "minItems" in node or "maxItems" in node:
            out.append(_range(node.get("minItems"), node.get("maxItems"), "item", "items"))
        if node.get("uniqueItems"):
            out.append("no duplicates")
        pattern = node.get("pattern")
        if pattern is not None and pattern != _DIGITS:
            is_reference = pattern == NAME_PATTERN and _KIND_RE.search(description)
            if not is_reference:
                out.append(_pattern_words(pattern))
        entry = self.map_value(node)
        if entry is not None and entry[1] is not None:
            out.append(f"names: {_pattern_words(entry[1])}")
        return [text for text in out if text]


def _plain_scalar(node: Mapping[str, Any]) -> bool:
    """A string, number or boolean with nothing more to say about it."""
    return node.get("type") in ("string", "integer", "number", "boolean") and set(node) <= {
        "type",
        "title",
    }


def _scalar_words(types: Sequence[str]) -> str:
    named = []
    for kind in types:
        word = "number" if kind == "integer" and "number" in types else kind
        if word not in named:
            named.append(word)
    return _words_list(named)


def _pattern_words(pattern: str) -> str:
    known = _PATTERNS.get(pattern)
    return known[1] if known is not None else f"pattern `{pattern}`"


def _conditional_requirements(obj: Mapping[str, Any]) -> dict[str, str]:
    """``{"spec": "required unless `metadata.ensure: absent`"}`` from an if/else schema."""
    condition, otherwise = obj.get("if"), obj.get("else")
    if not condition or not otherwise:
        return {}
    facts = []
    for name, prop in condition.get("properties", {}).items():
        for inner, value in prop.get("properties", {}).items():
            facts.append(f"`{name}.{inner}: {value['const']}`")
    unless = " and ".join(facts)
    return dict.fromkeys(otherwise.get("required", ()), f"required unless {unless}")


# --- the page ----------------------------------------------------------------------------------


def _example(file: str, names: Sequence[str], root: str) -> str:
    """The documents ``names`` of ``examples/<file>``, as written there."""
    path = os.path.normpath(os.path.join(root, EXAMPLES, file))
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    chunks = re.split(r"(?m)^---[ \t]*\n", text)
    found: dict[str, str] = {}
    for chunk in chunks:
        lines = [line for line in chunk.splitlines() if not line.startswith(_SCHEMA_COMMENT)]
        body = "\n".join(lines).strip("\n") + "\n"
        (document,) = load_text(body, path).documents
        data = document.data
        name = data.get("metadata", {}).get("name") if isinstance(data, dict) else None
        found.setdefault(str(name), body)
    missing = [name for name in names if name not in found]
    if missing:
        raise ValueError(f"{_source(file)} has no document named {', '.join(missing)}")
    return "---\n".join(found[name] for name in names)


def _source(file: str) -> str:
    """An example's file as the page names it: relative to the repository."""
    return os.path.normpath(os.path.join(EXAMPLES, file)).replace(os.sep, "/")


def _project_example(root: str) -> str:
    path = os.path.join(root, EXAMPLES, PROJECT_EXAMPLE)
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    return "\n".join(line for line in lines if not line.startswith(_SCHEMA_COMMENT)) + "\n"


def load_schemas() -> dict[str, dict[str, Any]]:
    """The schemas ``schemagen`` writes under ``schemas/``, by file name."""
    return {name: json.loads(text) for name, text in schemagen.generate().items()}


def sections(schemas: Mapping[str, Mapping[str, Any]], root: str = ROOT) -> list[Section]:
    """The envelope, one section per kind (in dependency order), then the project file."""
    manifest = schemas[MANIFEST_SCHEMA]
    walker = _Walker(manifest)
    documents = [walker.plain(alt)[0] for alt in manifest["oneOf"]]
    kinds = [document["properties"]["kind"]["const"] for document in documents]

    envelopes = []
    for document in documents:
        rows = walker.rows(document, "", stop=frozenset({"spec"}))
        envelopes.append([row for row in rows if row.path != "kind"])
    if any(rows != envelopes[0] for rows in envelopes):
        raise ValueError("the kinds' documents differ outside spec; document them apart")
    kind_row = next(row for row in walker.rows(documents[0], "") if row.path == "kind")
    kind_row = Row(
        "kind",
        f"one of {_words_list([_code(k) for k in kinds])}",
        kind_row.presence,
        kind_row.constraints,
        kind_row.description,
    )
    order = {name: index for index, name in enumerate(_ENVELOPE_ORDER)}
    envelope = sorted(
        [*envelopes[0], kind_row],
        key=lambda row: order.get(row.path.split(".")[0], len(order)),
    )
    intro = "The keys of every document, whatever its kind."
    out = [Section(ENVELOPE, tuple(envelope), intro=intro)]

    for kind, document in zip(kinds, documents, strict=True):
        spec, names = walker.plain(document["properties"]["spec"])
        file, example_names = KIND_EXAMPLES[kind]
        out.append(
            Section(
                kind,
                tuple(walker.children(spec, names, "spec", ())),
                intro=" ".join(
                    " ".join(str(walker.defs[name].get("description", "")).split())
                    for name in sorted(names)
                ),
                example=_example(file, example_names, root),
                example_source=_source(file),
            )
        )

    project = schemas[PROJECT_SCHEMA]
    out.append(
        Section(
            PROJECT,
            tuple(_Walker(project).rows(project, "")),
            intro=str(project.get("description", "")),
            example=_project_example(root),
            example_source=f"{EXAMPLES}/{PROJECT_EXAMPLE}",
        )
    )
    for section in out:
        paths = [row.path for row in section.rows]
        if len(paths) != len(set(paths)):
            raise ValueError(f"{section.title}: a field path is documented twice")
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(rows: Sequence[Row]) -> Iterator[str]:
    yield "| Field | Type | Required / default | Constraints | Description |"
    yield "|---|---|---|---|---|"
    for row in rows:
        description = row.description.replace("<", "&lt;")
        cells = (f"`{row.path}`", row.type, row.presence, row.constraints, description)
        yield "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def _anchor(title: str) -> str:
    slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
    return f"#{slug}"


def _intro(sections_: Sequence[Section]) -> Iterator[str]:
    kinds = [section.title for section in sections_[1:-1]]
    kind_links = _words_list([f"[`{kind}`]({_anchor(kind)})" for kind in kinds], "and")
    yield "# Writing manifests"
    yield ""
    yield (
        "<!-- Generated from the models by `make docs` (python -m reconciler.docgen); "
        "edit reconciler/models/ or reconciler/docgen.py, not this file. -->"
    )
    yield ""
    yield (
        "A manifest is a YAML file (`*.yaml` or `*.yml`) holding one or more documents, "
        "separated by `---`. Each document describes one record of Dynamics 365 Omnichannel "
        "and has four keys:"
    )
    yield ""
    yield f"- `apiVersion`: always `{API_VERSION}`;"
    yield f"- `kind`: {kind_links};"
    yield (
        "- `metadata`: the record's `name`, its stable key, unique per kind; other documents "
        "refer to the record by this name, and the record's id derives from it. "
        "`ensure: absent` deletes the record;"
    )
    yield "- `spec`: the record's settings, different for each kind."
    yield ""
    yield (
        "Files are found recursively under the paths given on the command line (hidden folders "
        "skipped). Unknown keys are errors. YAML is read the YAML 1.2 way: only `true` and "
        "`false` are booleans."
    )
    yield ""
    yield (
        "**Variables.** `${NAME}` in any string value is replaced from the `vars` of the "
        "environment chosen with `--env` (in [reconciler.yaml](#the-project-file-reconcileryaml)), "
        "`--var-file FILE` or `--var NAME=VALUE` (later ones win); `$${NAME}` writes a literal "
        "`${NAME}`. An undefined variable is an error."
    )
    yield ""
    yield (
        "**Secrets** are never written in a manifest, only where to find them: "
        "`{fromEnv: NAME}` (an environment variable) or `{fromFile: path}` (a file, relative "
        "to the manifest). A literal value where a secret belongs is an error; secret values "
        "never appear in plans, logs or messages."
    )
    yield ""
    yield (
        "What a secret may name is limited, because CI plans pull requests with its own "
        "credentials in the environment: a `fromFile` must be inside the project folder (the "
        "folder of `reconciler.yaml`, else of the manifest; links resolved, never under "
        "`.git`) or a folder listed in `RECONCILER_SECRET_DIRS`; a `fromEnv` must not be a "
        "credential of the reconciler or of the CI system (`GITHUB_TOKEN`, "
        "`AZURE_CLIENT_SECRET`, …). See "
        "[troubleshooting](troubleshooting.md#a-secret-is-refused) and "
        "[security](security.md)."
    )
    yield ""
    yield (
        "**Checking.** `reconciler validate [PATHS]` checks manifests offline, without secret "
        "values, and reports every problem at its `file:line:column`: types and limits, "
        "references between records, channel rules and policy. The JSON Schemas under "
        "`schemas/` (`reconciler schema`) give editors completion and checking as you type; "
        "start a file with"
    )
    yield ""
    yield "```yaml"
    yield f"{_SCHEMA_COMMENT} $schema=../schemas/{MANIFEST_SCHEMA}"
    yield "```"
    yield ""
    yield (
        f"(`{PROJECT_SCHEMA}` for reconciler.yaml), with the path relative to the file, as "
        "the files in `examples/` do."
    )
    yield ""
    yield "## Reading the field tables"
    yield ""
    yield (
        "Every field has a row, at every depth, under its path as written in YAML: "
        "`spec.distribution.capacity.units` is `units` inside `capacity` inside "
        "`distribution`; `[]` marks the items of a list (`spec.pages[].accessToken`) and "
        "`<name>` a key you choose (`environments.<name>.target`). A field that takes one of "
        "several forms (a secret, a condition, `routeTo`) lists each form's fields; "
        "*required in this form* applies once that form is chosen. A *reference* names "
        "another document of the same project by its `metadata.name`. Any string may use "
        "`${NAME}` variables."
    )
    yield ""
    yield "Contents:"
    yield ""
    for section in sections_:
        yield f"- [{section.title}]({_anchor(section.title)})"


def render(schemas: Mapping[str, Mapping[str, Any]], root: str = ROOT) -> str:
    """The whole page, from the schemas and the examples under ``root``."""
    found = sections(schemas, root)
    lines = list(_intro(found))
    for section in found:
        lines += ["", f"## {section.title}", "", section.intro, ""]
        if section.example:
            lines += [f"From `{section.example_source}`:", "", "```yaml"]
            lines += section.example.rstrip("\n").splitlines()
            lines += ["```", ""]
        lines += list(_table(section.rows))
    return "\n".join(lines) + "\n"


def generate(root: str = ROOT) -> str:
    """The page for the current models."""
    return render(load_schemas(), root)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reconciler.docgen", description="write the manifest field reference"
    )
    parser.add_argument("--out", default=os.path.join(ROOT, PAGE), metavar="FILE")
    args = parser.parse_args(argv)
    with open(args.out, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(generate())
    sys.stdout.write(f"wrote {os.path.relpath(args.out)}\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
