"""docs/manifests.md, the field reference generated from the models, is up to date and complete.

The checks here read the committed page and the committed JSON Schemas (``test_schemas`` keeps
those equal to the models), walking the schemas with their own small walker rather than the
generator's, so a field added to a model fails here until ``make docs`` documents it.
"""

from __future__ import annotations

import copy
import datetime
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from reconciler import docgen
from reconciler.manifest.load import merge_variables, read_sources
from reconciler.models.common import NAME_PATTERN
from reconciler.models.manifest import QueueManifest
from reconciler.models.queue import QueueSpec
from reconciler.validate import semantic
from reconciler.validate.pipeline import Options, build_documents, build_project, validate

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "manifests.md"
SCHEMAS = ROOT / "schemas"
EXAMPLES = ROOT / "examples"
STALE = "docs/manifests.md is out of date: run `make docs`"


def committed_page() -> str:
    return PAGE.read_text(encoding="utf-8")


def committed_schemas() -> dict[str, dict[str, Any]]:
    return {
        name: json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
        for name in (docgen.MANIFEST_SCHEMA, docgen.PROJECT_SCHEMA)
    }


# --- an independent walk of the schemas -------------------------------------------------------


def field_paths(schema: Mapping[str, Any]) -> Iterator[str]:
    """Every property path of ``schema`` as the page writes it (``spec.pages[].accessToken``,
    ``environments.<name>.target``). A union's forms share the path; a model met again inside
    itself (a condition inside ``all``) is not walked again."""
    defs = schema.get("$defs", {})

    def walk(node: Mapping[str, Any], prefix: str, seen: frozenset[str]) -> Iterator[str]:
        if "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                return
            node, seen = defs[ref.rsplit("/", 1)[-1]], seen | {ref}
        forms = [*node.get("anyOf", ()), *node.get("oneOf", ())]
        refs = frozenset(form["$ref"] for form in forms if "$ref" in form)
        for form in forms:
            if form.get("$ref") not in seen:
                yield from walk(form, prefix, seen | (refs - {form.get("$ref")}))
        if "items" in node:
            yield from walk(node["items"], f"{prefix}[]", seen)
        values = (
            [node["additionalProperties"]]
            if isinstance(node.get("additionalProperties"), dict)
            else []
        )
        values += list(node.get("patternProperties", {}).values())
        for value in values:
            yield from walk(value, f"{prefix}.<name>", seen)
        for name, prop in node.get("properties", {}).items():
            path = f"{prefix}.{name}" if prefix else name
            yield path
            yield from walk(prop, path, seen)

    yield from walk(schema, "", frozenset())


def page_sections(page: str) -> dict[str, str]:
    """The page's ``## `` sections by title."""
    parts = re.split(r"(?m)^## ", page)
    return {part.split("\n", 1)[0]: part for part in parts[1:]}


def expected_rows(schemas: Mapping[str, Mapping[str, Any]]) -> dict[str, set[str]]:
    """Section title → the field paths it must have a row for."""
    manifest = schemas[docgen.MANIFEST_SCHEMA]
    expected: dict[str, set[str]] = {docgen.ENVELOPE: set()}
    for ref in (branch["$ref"] for branch in manifest["oneOf"]):
        kind = manifest["$defs"][ref.rsplit("/", 1)[1]]["properties"]["kind"]["const"]
        document = {"$defs": manifest["$defs"], "$ref": ref}
        for path in field_paths(document):
            if path.startswith("spec."):
                expected.setdefault(kind, set()).add(path)
            else:
                expected[docgen.ENVELOPE].add(path)
    expected[docgen.PROJECT] = set(field_paths(schemas[docgen.PROJECT_SCHEMA]))
    return expected


def missing_rows(page: str, schemas: Mapping[str, Mapping[str, Any]]) -> list[str]:
    sections = page_sections(page)
    return sorted(
        f"{title}: {path}"
        for title, paths in expected_rows(schemas).items()
        for path in paths
        if f"\n| `{path}` |" not in sections.get(title, "")
    )


# --- (1) the committed page is what the generator writes now ----------------------------------


def test_the_committed_page_is_what_make_docs_writes() -> None:
    generated = docgen.generate()
    assert generated == docgen.generate(), "the page must come out the same every time"
    assert committed_page() == generated, STALE


# --- (2) every field of every schema has a row ------------------------------------------------


def test_every_field_of_the_schemas_has_a_row_in_its_section() -> None:
    expected = expected_rows(committed_schemas())
    assert set(expected) == {docgen.ENVELOPE, *docgen.KIND_EXAMPLES, docgen.PROJECT}
    # The walk reaches the depths the page must cover.
    for title, path in [
        (docgen.ENVELOPE, "metadata.name"),
        (docgen.ENVELOPE, "metadata.ensure"),
        ("Workstream", "spec.distribution.capacity.units"),
        ("FacebookAccount", "spec.pages[].accessToken.fromEnv"),
        ("FacebookAccount", "spec.applicationSecret.fromFile"),
        ("RoutingRuleSet", "spec.rules[].when.all"),
        ("RoutingRuleSet", "spec.rules[].when.not"),
        ("RoutingRuleSet", "spec.rules[].when.field"),
        ("RoutingRuleSet", "spec.rules[].routeTo[].percent"),
        (docgen.PROJECT, "environments.<name>.target"),
    ]:
        assert path in expected[title]
    assert missing_rows(committed_page(), committed_schemas()) == [], STALE


def test_every_row_says_what_the_field_is() -> None:
    for section in docgen.sections(docgen.load_schemas()):
        assert section.rows, section.title
        assert section.intro, f"{section.title}: give its model a docstring"
        for row in section.rows:
            where = f"{section.title}: {row.path}"
            assert row.description, f"{where} needs a description= on its model field"
            assert row.type, where
            assert row.presence, where


def test_references_name_the_kind_they_point_at() -> None:
    """A name-shaped field other than metadata.name refers to a record: its description must
    name the kind (so the page can say 'reference to a Queue')."""
    for section in docgen.sections(docgen.load_schemas()):
        for row in section.rows:
            if row.path == "metadata.name":
                assert row.type == "name"
            else:
                assert row.type != "name", f"{section.title}: {row.path} names no kind"
    rows = {
        row.path: row for section in docgen.sections(docgen.load_schemas()) for row in section.rows
    }
    assert rows["spec.fallbackQueue"].type.startswith("reference to a Queue")
    assert rows["spec.workstream"].type.startswith("reference to a Workstream")
    assert rows["spec.rules[].routeTo"].type.startswith("reference to a Queue")
    assert "`{queue, percent}`" in rows["spec.rules[].routeTo"].type
    assert rows["spec.applicationSecret"].type.startswith("secret reference")
    assert rows["spec.autoCloseAfterInactivity"].type.startswith("duration")
    assert rows["spec.pages[].tokenRotatedOn"].type.startswith("date")
    assert rows["spec"].presence == "required unless `metadata.ensure: absent`"


# --- (3) the checks fail when they should -----------------------------------------------------


@pytest.fixture
def reworded_priority() -> Iterator[str]:
    """QueueSpec.priority with another description, for as long as the test runs."""
    field = QueueSpec.model_fields["priority"]
    original = field.description
    field.description = "Reworded: 1 is the highest priority | <ever>."
    QueueSpec.model_rebuild(force=True)
    QueueManifest.model_rebuild(force=True)
    try:
        yield "Reworded: 1 is the highest priority \\| &lt;ever>."
    finally:
        field.description = original
        QueueSpec.model_rebuild(force=True)
        QueueManifest.model_rebuild(force=True)


def test_a_changed_model_description_makes_the_page_stale(reworded_priority: str) -> None:
    generated = docgen.generate()
    assert generated != committed_page()
    # The new words land in the Queue table, escaped for markdown.
    assert f"| `spec.priority` | integer | optional | ≥ 1 | {reworded_priority} |" in generated


def test_a_field_added_without_regenerating_is_missed() -> None:
    schemas = copy.deepcopy(committed_schemas())
    queue = schemas[docgen.MANIFEST_SCHEMA]["$defs"]["QueueSpec"]["properties"]
    queue["overflowQueue"] = {"type": "string", "pattern": NAME_PATTERN, "description": "A Queue."}
    environment = schemas[docgen.PROJECT_SCHEMA]["$defs"]["Environment"]["properties"]
    environment["token"] = {"type": "string", "description": "x"}
    assert missing_rows(committed_page(), schemas) == [
        "Queue: spec.overflowQueue",
        f"{docgen.PROJECT}: environments.<name>.token",
    ]
    # ... and regenerating documents them.
    assert missing_rows(docgen.render(schemas), schemas) == []


def test_a_model_inside_itself_is_documented_once() -> None:
    schemas = copy.deepcopy(committed_schemas())
    capacity = schemas[docgen.MANIFEST_SCHEMA]["$defs"]["Capacity"]["properties"]
    capacity["overflow"] = {"$ref": "#/$defs/Capacity", "description": "More of the same."}
    page = docgen.render(schemas)
    assert "| `spec.distribution.capacity.overflow` | object | optional |" in page
    assert "`spec.distribution.capacity.overflow.units`" not in page
    assert missing_rows(page, schemas) == []


def test_a_row_missing_from_the_page_is_reported() -> None:
    page = committed_page().replace("\n| `spec.rules[].when.any` |", "\n| `any` |")
    assert missing_rows(page, committed_schemas()) == ["RoutingRuleSet: spec.rules[].when.any"]


def test_the_generator_refuses_what_it_cannot_document(tmp_path: Path) -> None:
    schemas = copy.deepcopy(committed_schemas())
    schemas[docgen.MANIFEST_SCHEMA]["$defs"]["QueueManifest"]["properties"]["extra"] = {
        "type": "string"
    }
    with pytest.raises(ValueError, match="differ outside spec"):
        docgen.render(schemas)
    schemas = copy.deepcopy(committed_schemas())
    from_file = schemas[docgen.MANIFEST_SCHEMA]["$defs"]["FromFile"]
    from_file["properties"] = {"fromEnv": from_file["properties"]["fromFile"]}
    from_file["required"] = ["fromEnv"]
    with pytest.raises(ValueError, match="documented twice"):
        docgen.render(schemas)
    with pytest.raises(ValueError, match=r"queues\.yaml has no document named vip-support"):
        docgen.render(committed_schemas(), root=str(_examples_renaming(tmp_path, "vip-support")))


def _examples_renaming(root: Path, name: str) -> Path:
    """``root`` with a copy of examples/ in which the document ``name`` is called gone."""
    (root / "examples").mkdir()
    for path in EXAMPLES.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        (root / "examples" / path.name).write_text(text.replace(f"name: {name}", "name: gone"))
    return root


# --- the page's examples are true -------------------------------------------------------------


def page_examples(page: str) -> dict[str, str]:
    """Section title → its YAML example."""
    found = {}
    for title, text in page_sections(page).items():
        match = re.search(r"From `(?:examples|docs)/[^`]+`:\n\n```yaml\n(.*?)```", text, re.DOTALL)
        if match:
            found[title] = match.group(1)
    return found


def test_every_kind_and_the_project_file_has_an_example() -> None:
    assert set(page_examples(committed_page())) == {*docgen.KIND_EXAMPLES, docgen.PROJECT}


def test_the_examples_in_the_page_validate(tmp_path: Path) -> None:
    """Each example passes the model checks, and the cross-document checks too, with the
    records it refers to that the page does not show taken from examples/."""
    for title, text in page_examples(committed_page()).items():
        name = "reconciler.yaml" if title == docgen.PROJECT else f"{title.lower()}.yaml"
        (tmp_path / name).write_text(text, encoding="utf-8")
    sources = read_sources([str(tmp_path)])
    assert sources.diagnostics == []
    project, problems = build_project(sources.project)
    assert problems == []
    assert project.environments, "the project example has environments"
    variables = merge_variables(next(iter(project.environments.values())).vars)
    built = build_documents(sources.documents, variables)
    assert [d.message for d in built.diagnostics] == []
    shown = {(d.kind, d.name) for d in built.documents}
    assert {kind for kind, _ in shown} == set(docgen.KIND_EXAMPLES)
    elsewhere = {(d.kind, d.name) for d in validate(Options(paths=[str(EXAMPLES)])).documents}
    found = semantic.check(built.documents, project, datetime.date.today(), elsewhere - shown)
    # An AutomatedMessage validates, then is refused: none can be applied yet.
    refused = "automated-message-not-writable"
    assert [d.message for d in found if d.is_error and d.code != refused] == []
    assert [d.code for d in found if d.is_error] == [refused]


# --- the command -------------------------------------------------------------------------------


def test_python_m_reconciler_docgen_writes_the_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "manifests.md"
    assert docgen.main(["--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == docgen.generate()
    assert capsys.readouterr().out.startswith("wrote ")
