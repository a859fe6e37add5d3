"""Hostile input through the command line: malformed manifests and hostile YAML.

Whatever the input, ``reconciler validate`` (and ``plan``, which validates first) must:

- answer: no Python traceback, no "unexpected internal error" (an exception that escaped);
- within ``TIME_LIMIT`` seconds per input (measured around each call);
- exit 0, 1 or 3, and exit non-zero exactly when it printed at least one ``error`` diagnostic;
- print every diagnostic as ``file:line:col: error|warning: message`` (or an unlocated
  ``error: message``), at a line and column that lie inside the file it names, followed by a
  summary line whose counts agree with the lines above it.

Most inputs run in-process through ``reconciler.cli.main`` (fast). The nastiest also run as real
processes (``python -m reconciler``) under a memory limit and a timeout: an in-process catch can
hide what a process does (a C stack overflow, an OOM kill, a blocked read).

The hypothesis settings are derandomized (the same examples every run) and keep no example
database; each test bounds its own examples so that the file runs in well under 30 s.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from examples_project import ROOT, copy_examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.cli import main
from reconciler.manifest import yaml_loader
from reconciler.manifest.yaml_loader import load_text

TIME_LIMIT = 5.0
"""Seconds one input may take, in-process (the examples here take milliseconds to a second)."""
PROCESS_TIME_LIMIT = 15.0
"""Seconds one real process may take, start-up included."""
PROCESS_MEMORY_LIMIT = 2 * 1024**3
"""Address space of a real process: a memory bomb fails fast instead of swapping the machine."""

HOSTILE = settings(
    deadline=None,  # the time bound is TIME_LIMIT, checked around each call
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # the fixtures are read-only across examples
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

SCALE = int(os.environ.get("HOSTILE_SCALE", "1"))
"""More examples of every property for a deeper search: ``HOSTILE_SCALE=50 pytest ...``."""


def hostile(max_examples: int) -> settings:
    return settings(HOSTILE, max_examples=max_examples * SCALE)


EXAMPLES = ROOT / "examples"
MANIFEST_FILES = sorted(path.name for path in EXAMPLES.glob("*.yaml") if path.stem != "reconciler")
PROJECT_FILE = "reconciler.yaml"
QUEUE = (
    "apiVersion: reconciler.omnichannel/v1\nkind: Queue\nmetadata:\n  name: q\n"
    "spec:\n  priority: 1\n"
)

# --- the command line, and what every answer must look like ---------------------------------

# note: lines say what a command assumed (a project without reconciler.yaml: its defaults).
DIAGNOSTIC = re.compile(
    r"(?:(?P<file>.+):(?P<line>[0-9]+):(?P<column>[0-9]+): )?"
    r"(?P<severity>error|warning|note): (?P<message>.*\S.*)"
)
SUMMARY = re.compile(
    r"(?P<documents>[0-9]+) documents? in (?P<files>[0-9]+) files?: "
    r"(?P<errors>[0-9]+) errors?, (?P<warnings>[0-9]+) warnings?"
)
LINE_BREAKS = (b"\n", b"\r", "\x85".encode(), "\u2028".encode(), "\u2029".encode())


@dataclass
class Answer:
    args: tuple[str, ...]
    code: int
    out: str
    err: str
    seconds: float

    def __str__(self) -> str:
        return (
            f"reconciler {' '.join(a[:80] for a in self.args)} -> exit {self.code} in "
            f"{self.seconds:.2f}s\nstdout: {self.out[:2000]!r}\nstderr: {self.err[:2000]!r}"
        )


def cli(*args: str) -> Answer:
    """``reconciler ARGS`` in-process, its output captured and its time measured."""
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return Answer(args, code, out.getvalue(), err.getvalue(), time.perf_counter() - start)


def _answered(answer: Answer, time_limit: float = TIME_LIMIT) -> None:
    assert answer.seconds < time_limit, f"too slow: {answer}"
    for stream in (answer.out, answer.err):
        assert "Traceback (most recent call last)" not in stream, str(answer)
    assert "unexpected internal error" not in answer.err, str(answer)


def _diagnostics(text: str, answer: Answer) -> list[re.Match[str]]:
    """Every line of ``text`` parsed as a diagnostic (it must be one)."""
    assert text == "" or text.endswith("\n"), str(answer)
    found = []
    for line in text.split("\n")[:-1]:
        match = DIAGNOSTIC.fullmatch(line)
        assert match is not None, f"not a diagnostic line: {line[:300]!r}\n{answer}"
        found.append(match)
    return found


def _located_inside_their_files(diagnostics: list[re.Match[str]], answer: Answer) -> None:
    sizes: dict[str, tuple[int, int]] = {}
    for diagnostic in diagnostics:
        if diagnostic["file"] is None:
            continue
        line, column = int(diagnostic["line"]), int(diagnostic["column"])
        assert line >= 1, f"{diagnostic[0][:300]}\n{answer}"
        assert column >= 1, f"{diagnostic[0][:300]}\n{answer}"
        path = diagnostic["file"]
        if path not in sizes and os.path.isfile(path):
            with contextlib.suppress(OSError):
                raw = Path(path).read_bytes()
                sizes[path] = (sum(raw.count(b) for b in LINE_BREAKS) + 1, len(raw) + 1)
        if path in sizes:
            lines, columns = sizes[path]
            assert line <= lines, f"past the last line: {diagnostic[0][:300]}"
            assert column <= columns, f"past the end: {diagnostic[0][:300]}"


def check_validate(answer: Answer, time_limit: float = TIME_LIMIT) -> list[re.Match[str]]:
    """The properties of a ``validate`` answer (text format); its diagnostics."""
    _answered(answer, time_limit)
    problems = _diagnostics(answer.err, answer)  # usage errors, if any
    if answer.out:
        body, _, last = answer.out.removesuffix("\n").rpartition("\n")
        summary = SUMMARY.fullmatch(last)
        assert summary is not None, f"no summary line\n{answer}"
        diagnostics = _diagnostics(body + "\n" if body else "", answer)
        errors = sum(d["severity"] == "error" for d in diagnostics)
        assert int(summary["errors"]) == errors, str(answer)
        assert int(summary["warnings"]) == len(diagnostics) - errors, str(answer)
        problems += diagnostics
    _located_inside_their_files(problems, answer)
    errors = sum(d["severity"] == "error" for d in problems)
    assert answer.code in (0, 1, 3), str(answer)
    assert (answer.code != 0) == (errors > 0), str(answer)
    return problems


def check_json(answer: Answer) -> dict[str, Any]:
    """The properties of a ``validate --format json`` answer; its payload."""
    _answered(answer)
    assert answer.err == "", str(answer)
    payload: dict[str, Any] = json.loads(answer.out)
    errors = 0
    for item in payload["diagnostics"]:
        assert item["severity"] in ("error", "warning")
        assert item["message"].strip()
        if item["file"] is not None:
            assert item["line"] >= 1
            assert item["column"] >= 1
        errors += item["severity"] == "error"
    assert payload["summary"]["errors"] == errors
    assert answer.code in (0, 1, 3)
    assert (answer.code != 0) == (errors > 0), str(answer)
    return payload


def check_plan(answer: Answer) -> list[re.Match[str]]:
    """The properties of a ``plan`` answer: diagnostics on stderr, the plan on stdout."""
    _answered(answer)
    problems = _diagnostics(answer.err, answer)
    _located_inside_their_files(problems, answer)
    errors = sum(d["severity"] == "error" for d in problems)
    assert answer.code in (0, 1, 3), str(answer)
    if answer.code == 3 and not errors:  # a conflict with what the target holds
        assert "conflict" in answer.out, str(answer)
    else:
        assert (answer.code != 0) == (errors > 0), str(answer)
    if answer.code == 0:
        assert "Plan:" in answer.out or "No changes" in answer.out, str(answer)
    return problems


def errors_in(diagnostics: list[re.Match[str]], path: Path) -> list[str]:
    return [d[0] for d in diagnostics if d["severity"] == "error" and d["file"] == str(path)]


# --- fixtures: a pristine copy of the examples, and a scratch copy per example ----------------


@pytest.fixture
def examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The examples with their secrets in the environment; never changed by the tests."""
    return copy_examples(tmp_path, monkeypatch)


@contextlib.contextmanager
def scratch(pristine: Path | None = None) -> Iterator[Path]:
    """A fresh folder for one hypothesis example (a copy of ``pristine`` if given)."""
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        root = Path(tmp) / "project"
        if pristine is None:
            root.mkdir()
        else:
            shutil.copytree(pristine, root, symlinks=True)
        yield root


def test_the_examples_are_valid_to_start_with(examples: Path) -> None:
    """The mutations below start from a project that validates (exit 0, two warnings)."""
    answer = cli("validate", str(examples))
    diagnostics = check_validate(answer)
    assert answer.code == 0
    assert [d["severity"] for d in diagnostics] == ["warning", "warning"]


# --- YAML text: emitting data with duplicates, tags and raw fragments -------------------------


class Pairs(list[tuple[Any, Any]]):
    """A mapping written as these pairs, so a key may repeat."""


@dataclass(frozen=True)
class Tagged:
    tag: str
    value: Any


@dataclass(frozen=True)
class Raw:
    text: str


# What a double-quoted scalar cannot hold raw: the quote, the backslash, characters outside
# YAML's printable set, and the line breaks and BOM that would be folded or dropped.
_UNQUOTABLE = re.compile('["\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]')


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in '"\\':
        return "\\" + char
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def quote(text: str) -> str:
    """A YAML double-quoted scalar for any text (every unprintable character escaped)."""
    return '"' + _UNQUOTABLE.sub(_escape, text) + '"'


def emit(value: Any) -> str:
    """YAML flow text for ``value``; strings are always quoted, so types survive exactly."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Tagged):
        return f"{value.tag} {emit(value.value)}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, Pairs):
        return "{" + ", ".join(f"{emit(k)}: {emit(v)}" for k, v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{emit(k)}: {emit(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(emit(item) for item in value) + "]"
    raise AssertionError(f"cannot emit {value!r}")


def emit_documents(documents: list[Any]) -> str:
    return "".join(f"---\n{emit(document)}\n" for document in documents)


# --- the examples as data, and paths into it --------------------------------------------------


def _load(name: str) -> list[Any]:
    result = load_text((EXAMPLES / name).read_text(encoding="utf-8"), name)
    assert result.diagnostics == []
    return [document.data for document in result.documents]


EXAMPLE_DATA = {name: _load(name) for name in [*MANIFEST_FILES, PROJECT_FILE]}

KeyPath = tuple[str | int, ...]


def paths_in(value: Any, path: KeyPath = ()) -> Iterator[KeyPath]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths_in(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths_in(item, (*path, index))


def value_at(data: Any, path: KeyPath) -> Any:
    for part in path:
        data = data[part]
    return data


def replaced(data: Any, path: KeyPath, new: Any) -> Any:
    """A copy of ``data`` with the value at ``path`` replaced by ``new``."""
    if not path:
        return new
    result = copy.deepcopy(data)
    parent = value_at(result, path[:-1])
    parent[path[-1]] = new
    return result


# (file, document index, path) for every value of every example manifest.
EVERY_PATH = [
    (name, index, path)
    for name in MANIFEST_FILES
    for index, document in enumerate(EXAMPLE_DATA[name])
    for path in paths_in(document)
]
PROJECT_PATHS = list(paths_in(EXAMPLE_DATA[PROJECT_FILE][0]))
MAPPING_PATHS = [
    (name, index, path)
    for name, index, path in EVERY_PATH
    if isinstance(value_at(EXAMPLE_DATA[name][index], path), dict)
]
STRUCTURAL = [(), ("apiVersion",), ("kind",), ("metadata",), ("spec",)]
"""Where a value of another type can never be right."""
FREE_FORM = {"labels", "set", "vars", "environments"}
"""Mappings whose keys the user chooses (any key is allowed there)."""

# Text that cannot break a diagnostic line: control characters and line separators are the
# subject of test_control_characters_in_echoed_names_are_escaped alone.
SAFE_CHARACTERS = st.characters(
    blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\x85"
)
safe_text = st.text(SAFE_CHARACTERS, max_size=24)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    safe_text,
    st.sampled_from(
        ["", " ", "0", "-1", "1e999", "Queue", "${UNSET}", "${", "$${X}", "{fromEnv: X}"]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(safe_text, inner, max_size=4),
    max_leaves=8,
)


def kind_of(value: Any) -> str:
    """The YAML type of a value (bool is not an int here, as in the manifests)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def write_mutated(project: Path, name: str, index: int, document: Any) -> Path:
    documents = list(EXAMPLE_DATA[name])
    documents[index] = document
    path = project / name
    path.write_text(emit_documents(documents), encoding="utf-8")
    return path


class Recipe:
    """A hostile input, reported by what it is: its text may be megabytes."""

    def __init__(self, what: str, detail: str, text: str) -> None:
        self.what, self.detail, self.text = what, detail, text

    def __repr__(self) -> str:
        return f"Recipe({self.what!r}, {self.detail[:200]!r}, <{len(self.text)} characters>)"


# --- deep nesting -----------------------------------------------------------------------------


@st.composite
def deep_nesting(draw: st.DrawFn, max_depth: int = 5_000) -> Recipe:
    depth = draw(st.integers(66, max_depth))  # a value at path length 65: one too deep
    closed = draw(st.booleans())
    form = draw(st.sampled_from(["flow-seq", "flow-map", "block-map", "block-seq", "mixed"]))
    return Recipe(
        form, f"{depth} levels{', closed' if closed else ''}", _nested(form, depth, closed)
    )


def _nested(form: str, depth: int, closed: bool) -> str:
    if form == "flow-seq":
        return "[" * depth + ("]" * depth if closed else "")
    if form == "flow-map":
        return "{a: " * depth + "x" + ("}" * depth if closed else "")
    if form == "block-map":
        depth = min(depth, 1_500)  # the text grows with the square of the depth
        return "".join(" " * level + "k:\n" for level in range(depth)) + " " * depth + "v\n"
    if form == "block-seq":
        return "- " * depth + "x\n"
    spec = "[{a: " * (depth // 2) + "1" + ("}]" * (depth // 2) if closed else "")
    return (
        f"apiVersion: reconciler.omnichannel/v1\nkind: Queue\nmetadata: {{name: q}}\nspec: {spec}\n"
    )


@hostile(20)
@given(recipe=deep_nesting())
def test_deep_nesting_is_refused_without_recursing(recipe: Recipe) -> None:
    with scratch() as project:
        (project / "deep.yaml").write_text(recipe.text, encoding="utf-8")
        diagnostics = check_validate(cli("validate", str(project)))
    assert any("nests deeper than" in d["message"] for d in diagnostics) or any(
        "invalid YAML" in d["message"] for d in diagnostics
    )


@hostile(20)
@given(depth=st.integers(1, 200), form=st.sampled_from(["not", "all", "any"]))
def test_deep_conditions_reach_validation_or_are_refused(
    examples: Path, depth: int, form: str
) -> None:
    """Nesting just under and over the loader's limit, inside a rule a valid project has."""
    leaf = "{field: facebook.customerName, op: equals, value: Jan de Vries}"
    condition = leaf
    for _ in range(depth):
        condition = f"{{not: {condition}}}" if form == "not" else f"{{{form}: [{condition}]}}"
    with scratch(examples) as project:
        path = project / "facebook-routing.yaml"
        text = path.read_text(encoding="utf-8")
        assert leaf in text
        path.write_text(text.replace(leaf, condition, 1), encoding="utf-8")
        check_validate(cli("validate", str(project)))


# --- alias bombs ------------------------------------------------------------------------------


@st.composite
def alias_bombs(draw: st.DrawFn, small: bool = False) -> Recipe:
    kind = draw(st.sampled_from(["laughs", "laughs-map", "merge", "long-string", "recursive"]))
    levels = draw(st.integers(2, 12))
    fanout = draw(st.integers(2, 12))
    if kind == "long-string":
        size = draw(st.sampled_from([10_000] if small else [10_000, 100_000, 1_000_000]))
        count = draw(st.sampled_from([10, 1_000] if small else [10, 1_000, 20_000]))
        variable = draw(st.sampled_from(["", "${TEAM_SUFFIX}", "${"]))
        detail = f"{size} characters + {variable!r}, {count} aliases"
        return Recipe(kind, detail, _aliased_string(size, count, variable))
    if kind == "recursive":
        text = draw(st.sampled_from(RECURSIVE_ALIASES))
        return Recipe(kind, text, text)
    return Recipe(kind, f"{levels} levels of {fanout}", _bomb(kind, levels, fanout))


RECURSIVE_ALIASES = [
    "a: &a [*a]\n",
    "a: &a {b: *a}\n",
    "a: &a {<<: *a}\n",
    "a: *a\n",
    "a: &a 1\nb: &a 2\nc: *a\n",
    "&a [*a, *a]\n",
    "a: &a [1]\nb: {<<: *a}\n",
]


def _aliased_string(size: int, count: int, variable: str) -> str:
    big = "x" * size + variable
    items = ", ".join(f"k{i}: *big" for i in range(count))
    return (
        "apiVersion: reconciler.omnichannel/v1\nkind: Queue\nmetadata:\n  name: q\n"
        f"  labels: {{big: &big '{big}', {items}}}\nspec: {{priority: 1}}\n"
    )


def _bomb(kind: str, levels: int, fanout: int) -> str:
    if kind == "laughs":
        lines = ["a0: &a0 [" + ", ".join(["lol"] * fanout) + "]"]
        lines += [
            f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fanout) + "]" for i in range(1, levels)
        ]
        return "\n".join(lines) + "\n"
    if kind == "laughs-map":
        lines = ["a0: &a0 {x: lol}"]
        lines += [
            f"a{i}: &a{i} {{" + ", ".join(f"k{j}: *a{i - 1}" for j in range(fanout)) + "}"
            for i in range(1, levels)
        ]
        return (
            "apiVersion: reconciler.omnichannel/v1\nkind: Queue\nmetadata:\n  name: q\n"
            "  labels:\n" + "".join(f"    {line}\n" for line in lines) + "spec: {priority: 1}\n"
        )
    if kind == "merge":
        lines = ["m0: &m0 {a: 1, b: 2}"]
        lines += [
            f"m{i}: &m{i} {{<<: [" + ", ".join([f"*m{i - 1}"] * fanout) + f"], k{i}: {i}}}"
            for i in range(1, levels)
        ]
        return "\n".join(lines) + "\n"
    raise AssertionError(kind)


@hostile(20)
@given(recipe=alias_bombs())
def test_alias_bombs_are_refused_quickly(recipe: Recipe) -> None:
    with scratch() as project:
        (project / "bomb.yaml").write_text(recipe.text, encoding="utf-8")
        check_validate(cli("validate", str(project), "--var", "TEAM_SUFFIX=-dev"))


def test_an_alias_cannot_nest_a_document_past_the_limit(tmp_path: Path) -> None:
    """Each part is 40 levels deep; an alias puts one inside the other, 80 levels deep."""
    text = "a: &deep " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 40 + "*deep" + "]" * 40 + "\n"
    (tmp_path / "m.yaml").write_text(text, encoding="utf-8")
    diagnostics = check_validate(cli("validate", str(tmp_path)))
    assert [d["message"] for d in diagnostics] == ["document nests deeper than 64 levels"]


def test_a_billion_laughs_is_refused_as_an_alias_bomb(tmp_path: Path) -> None:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    (tmp_path / "laughs.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    diagnostics = check_validate(cli("validate", str(tmp_path)))
    assert [d["message"] for d in diagnostics if "alias bomb" in d["message"]]


# --- huge strings, keys and lines -------------------------------------------------------------


@st.composite
def huge_inputs(draw: st.DrawFn) -> Recipe:
    """Where a string of several megabytes goes, and the manifest that has it there."""
    size = draw(st.sampled_from([100_000, 1_000_000, 4_000_000]))
    char = draw(st.sampled_from(["x", "é", "1", "$", "{", "\u263a", " "]))
    where = draw(
        st.sampled_from(
            [
                "description",
                "name",
                "kind",
                "label-value",
                "plain-key",
                "explicit-key",
                "comment",
                "block-scalar",
                "integer",
                "float",
                "variables",
            ]
        )
    )
    return Recipe(where, f"{size} x {char!r}", _huge(where, size, char))


def _huge(where: str, size: int, char: str) -> str:
    big = char * size
    if where == "description":
        return QUEUE + f"  description: {quote(big)}\n"
    if where == "name":
        return QUEUE.replace("name: q", f"name: {quote(big)}")
    if where == "kind":
        return QUEUE.replace("kind: Queue", f"kind: {quote(big)}")
    if where == "label-value":
        return QUEUE.replace("name: q", f"name: q\n  labels: {{big: {quote(big)}}}")
    if where == "plain-key":
        return QUEUE + "  " + "k" * size + ": 1\n"
    if where == "explicit-key":
        return QUEUE + f"  ? {quote(big)}\n  : 1\n"
    if where == "comment":
        return QUEUE + "# " + big + "\n"
    if where == "block-scalar":
        line = (char if char.strip() else "x") * 80  # lines of blanks would be an empty value
        return QUEUE + "  description: |\n" + "".join(f"    {line}\n" for _ in range(size // 80))
    if where == "integer":
        return QUEUE.replace("priority: 1", "priority: " + "9" * size)
    if where == "float":
        return QUEUE.replace("priority: 1", "priority: " + "9" * size + ".5e-3")
    return QUEUE + f"  description: {quote('${' * (size // 2))}\n"


@hostile(10)
@given(recipe=huge_inputs())
def test_huge_strings_keys_and_numbers(recipe: Recipe) -> None:
    with scratch() as project:
        (project / "huge.yaml").write_text(recipe.text, encoding="utf-8")
        answer = cli("validate", str(project))
        check_validate(answer)
    # Labels are free text of any length, a comment is ignored; anything else is too long.
    assert answer.code == (0 if recipe.what in ("label-value", "comment") else 1), str(answer)


@hostile(8)
@given(
    count=st.sampled_from([10_000, 50_000]),
    form=st.sampled_from(["flow-list", "flow-map", "plain", "quoted-escapes", "commas"]),
)
def test_very_long_lines(count: int, form: str) -> None:
    if form == "flow-list":
        line = "spec: [" + ", ".join(["x"] * count) + "]"
    elif form == "flow-map":
        line = "spec: {" + ", ".join(f"k{i}: {i}" for i in range(count)) + "}"
    elif form == "plain":
        line = "spec: " + "word " * count
    elif form == "quoted-escapes":
        line = 'spec: "' + "\\x41\\u00e9\\t" * count + '"'
    else:
        line = "spec: " + "," * count
    with scratch() as project:
        (project / "long.yaml").write_text(
            QUEUE.replace("spec:\n  priority: 1\n", line + "\n"), encoding="utf-8"
        )
        answer = cli("validate", str(project))
        check_validate(answer)
    assert answer.code == 1


# --- wrong types, unknown keys and duplicate keys in the examples ------------------------------


@hostile(30)
@given(target=st.sampled_from(EVERY_PATH), new=values)
def test_a_wrong_value_at_any_level(
    examples: Path, target: tuple[str, int, KeyPath], new: Any
) -> None:
    name, index, path = target
    original = value_at(EXAMPLE_DATA[name][index], path)
    document = replaced(EXAMPLE_DATA[name][index], path, new)
    with scratch(examples) as project:
        mutated = write_mutated(project, name, index, document)
        diagnostics = check_validate(cli("validate", str(project)))
    structural = path in STRUCTURAL and not (path == () and new is None)  # null: no document
    if structural and kind_of(new) != kind_of(original):
        assert errors_in(diagnostics, mutated), f"{path} = {new!r} was accepted"


def test_a_wrong_type_at_every_path_in_one_run(tmp_path: Path) -> None:
    """Every value of every example manifest replaced by one of another type, each mutation in
    its own file, all validated in one run (one CLI call keeps it fast)."""
    wrong = [None, 7, "text", [1, "x"], {"unknown": 1}, True, -2.5, ""]
    for number, (name, index, path) in enumerate(EVERY_PATH):
        original = value_at(EXAMPLE_DATA[name][index], path)
        candidates = [
            v for v in wrong if kind_of(v) != kind_of(original) and (path or v is not None)
        ]
        new = candidates[number % len(candidates)]
        document = replaced(EXAMPLE_DATA[name][index], path, new)
        (tmp_path / f"m{number:04d}.yaml").write_text(emit_documents([document]), encoding="utf-8")
    answer = cli("validate", str(tmp_path))
    diagnostics = check_validate(answer, time_limit=2 * TIME_LIMIT)
    assert answer.code == 1
    assert f"{len(EVERY_PATH)} documents in {len(EVERY_PATH)} files" in answer.out
    # Structural damage is reported in the file that has it.
    for number, (_, _, path) in enumerate(EVERY_PATH):
        if path in STRUCTURAL:
            assert errors_in(diagnostics, tmp_path / f"m{number:04d}.yaml"), path


@pytest.mark.parametrize("path", PROJECT_PATHS, ids=lambda p: ".".join(map(str, p)) or "root")
def test_a_wrong_type_at_every_path_of_the_project_file(examples: Path, path: KeyPath) -> None:
    original = value_at(EXAMPLE_DATA[PROJECT_FILE][0], path)
    new = 7 if kind_of(original) != "number" else {"unknown": [1]}
    project_file = examples / PROJECT_FILE
    project_file.write_text(
        emit_documents([replaced(EXAMPLE_DATA[PROJECT_FILE][0], path, new)]), encoding="utf-8"
    )
    check_validate(cli("validate", str(examples)))
    check_plan(cli("plan", str(examples), "--env", "dev", "--target", "local:plan.db"))


@hostile(20)
@given(target=st.sampled_from(MAPPING_PATHS), suffix=safe_text, new=values)
def test_unknown_keys_are_errors(
    examples: Path, target: tuple[str, int, KeyPath], suffix: str, new: Any
) -> None:
    name, index, path = target
    mapping = dict(value_at(EXAMPLE_DATA[name][index], path))
    mapping["zz-" + suffix] = new  # no manifest key starts with "zz-"
    document = replaced(EXAMPLE_DATA[name][index], path, mapping)
    with scratch(examples) as project:
        mutated = write_mutated(project, name, index, document)
        diagnostics = check_validate(cli("validate", str(project)))
    if not FREE_FORM.intersection(str(part) for part in path):
        assert errors_in(diagnostics, mutated), f"unknown key at {path} was accepted"


@hostile(20)
@given(target=st.sampled_from(MAPPING_PATHS), data=st.data())
def test_duplicate_keys_are_errors(
    examples: Path, target: tuple[str, int, KeyPath], data: st.DataObject
) -> None:
    name, index, path = target
    mapping = value_at(EXAMPLE_DATA[name][index], path)
    assert mapping, "the examples have no empty mappings"
    key = data.draw(st.sampled_from(sorted(mapping)))
    again = data.draw(st.one_of(st.just(mapping[key]), values))
    pairs = Pairs(mapping.items())
    pairs.insert(data.draw(st.integers(0, len(pairs))), (key, again))
    document = replaced(EXAMPLE_DATA[name][index], path, pairs)
    with scratch(examples) as project:
        mutated = write_mutated(project, name, index, document)
        diagnostics = check_validate(cli("validate", str(project)))
    assert any("duplicate key" in line for line in errors_in(diagnostics, mutated))


# --- tags, merge keys, documents --------------------------------------------------------------

DANGEROUS_TAGS = [
    "!!python/object/apply:os.system",
    "!!python/object/apply:subprocess.check_output",
    "!!python/object/new:os.system",
    "!!python/object:builtins.dict",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/tuple",
    "!!python/bytes",
    "!!python/unicode",
]
OTHER_TAGS = [
    "!!binary",
    "!!timestamp",
    "!!set",
    "!!omap",
    "!!pairs",
    "!!value",
    "!!yaml",
    "!foo",
    "!<tag:example.com,2000:x>",
    "!<!>",
    "!!str",
    "!!int",
    "!!float",
    "!!bool",
    "!!null",
    "!!seq",
    "!!map",
    "!!merge",
    "!",
]


@hostile(20)
@given(
    target=st.sampled_from(EVERY_PATH),
    tag=st.sampled_from(DANGEROUS_TAGS + OTHER_TAGS),
    payload=st.booleans(),
)
def test_tags_never_construct_objects(
    examples: Path, target: tuple[str, int, KeyPath], tag: str, payload: bool
) -> None:
    name, index, path = target
    with scratch(examples) as project:
        sentinel = project / "pwned"
        value: Any = value_at(EXAMPLE_DATA[name][index], path)
        if payload:  # what a constructing loader would run
            value = [f"touch {sentinel}"]
        document = replaced(EXAMPLE_DATA[name][index], path, Tagged(tag, value))
        mutated = write_mutated(project, name, index, document)
        diagnostics = check_validate(cli("validate", str(project)))
        assert not sentinel.exists()
    if tag in DANGEROUS_TAGS:
        assert any("unsupported YAML tag" in line for line in errors_in(diagnostics, mutated))


def test_a_python_object_tag_is_refused_and_not_run(tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    text = QUEUE + f"  description: !!python/object/apply:os.system ['touch {sentinel}']\n"
    (tmp_path / "q.yaml").write_text(text, encoding="utf-8")
    diagnostics = check_validate(cli("validate", str(tmp_path)))
    assert [d["message"] for d in diagnostics if d["severity"] == "error"] == [
        "unsupported YAML tag 'tag:yaml.org,2002:python/object/apply:os.system'"
    ]
    assert not sentinel.exists()


@hostile(20)
@given(target=st.sampled_from(MAPPING_PATHS), split=st.integers(0, 100), data=st.data())
def test_merge_keys_rebuild_the_same_document(
    examples: Path, target: tuple[str, int, KeyPath], split: int, data: st.DataObject
) -> None:
    """Moving some keys of a mapping behind ``<<`` (inline, or through an anchor) changes
    nothing: the project stays valid."""
    name, index, path = target
    mapping = value_at(EXAMPLE_DATA[name][index], path)
    keys = list(mapping)
    merged = {key: mapping[key] for key in keys[: split % (len(keys) + 1)]}
    kept = Pairs((key, mapping[key]) for key in keys if key not in merged)
    form = data.draw(st.sampled_from(["inline", "list", "overridden"]))
    if form == "inline":
        kept.insert(0, (Raw("<<"), merged))
    elif form == "list":
        kept.append((Raw("<<"), [merged, {}, merged]))
    else:  # a merged value that an explicit key overrides
        noise = dict.fromkeys(kept_keys(kept), "overridden by the explicit key")
        kept.append((Raw("<<"), [merged, noise]))
    document = replaced(EXAMPLE_DATA[name][index], path, kept)
    with scratch(examples) as project:
        write_mutated(project, name, index, document)
        answer = cli("validate", str(project))
        check_validate(answer)
    assert answer.code == 0, str(answer)


def kept_keys(pairs: Pairs) -> list[Any]:
    return [key for key, _ in pairs if not isinstance(key, Raw)]


@hostile(20)
@given(
    text=st.sampled_from(
        [
            "a: {<<: 1}\n",
            "a: {<<: [1, 2]}\n",
            "a: {<<: [[{b: 1}]]}\n",
            "a: {<<: null}\n",
            "a: {<<: {<<: {<<: {b: 1}}}}\n",
            "s: &s [1, 2]\na: {<<: *s}\n",
            "m: &m {b: 1}\na: {<<: [*m, *m, *m], <<: *m}\n",
            "a: {<<: *undefined}\n",
            "a: {!!merge <<: {b: 1}}\n",
            "a: {'<<': {b: 1}}\n",
            "<<: {apiVersion: reconciler.omnichannel/v1, kind: Queue}\nmetadata: {name: q}\n"
            "spec: {priority: 1}\n",
            "? <<\n: {b: 1}\n",
            "a: {<<: &x {b: *x}}\n",
        ]
    ),
)
def test_hostile_merge_keys(text: str) -> None:
    with scratch() as project:
        (project / "merge.yaml").write_text(text, encoding="utf-8")
        check_validate(cli("validate", str(project)))


SEGMENTS = [
    QUEUE,
    "",
    "# only a comment",
    "---",
    "...",
    "--- ",
    "---\n...",
    "%YAML 1.2\n---",
    "%YAML 1.1\n---",
    "%YAML 9.9\n---",
    "%TAG ! tag:example.com,2000:\n---",
    "%FOO bar\n---",
    "--- |\n  text",
    "--- !!map",
    "--- null",
    "--- ~",
    "--- []",
    "--- {}",
    "--- 'a string'",
    "--- 42",
    "--- *a",
    "--- &a {}",
    "\ufeff",
    "\n\n\n",
]


@hostile(30)
@given(segments=st.lists(st.sampled_from(SEGMENTS), max_size=8))
def test_multiple_and_empty_documents(segments: list[str]) -> None:
    text = "\n".join(segments)
    with scratch() as project:
        (project / "docs.yaml").write_text(text, encoding="utf-8")
        check_validate(cli("validate", str(project)))


# --- characters and bytes ---------------------------------------------------------------------

CONTROL_CHARACTERS = [chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]] + [
    "\u2028",
    "\u2029",
    "\ufeff",
    "\ufffe",
    "\uffff",
    "\u202e",
    "\u200b",
    "\U0010ffff",
]


@hostile(30)
@given(
    name=st.sampled_from(MANIFEST_FILES),
    insertions=st.lists(
        st.tuples(st.integers(0, 10_000), st.sampled_from(CONTROL_CHARACTERS)),
        min_size=1,
        max_size=4,
    ),
)
def test_control_characters(examples: Path, name: str, insertions: list[tuple[int, str]]) -> None:
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    for position, char in insertions:
        at = position % (len(text) + 1)
        text = text[:at] + char + text[at:]
    with scratch(examples) as project:
        (project / name).write_text(text, encoding="utf-8")
        check_validate(cli("validate", str(project)))


def _encodings() -> st.SearchStrategy[bytes]:
    text = (EXAMPLES / "queues.yaml").read_text(encoding="utf-8")
    encoded = [
        text.encode("utf-16"),
        text.encode("utf-16-le"),
        text.encode("utf-16-be"),
        text.encode("utf-32"),
        b"\xef\xbb\xbf" + text.encode(),
        b"\xef\xbb\xbf\xef\xbb\xbf" + text.encode(),
        b"\xfe\xff" + text.encode(),
        text.encode().replace(b"support", b"supp\xe9rt"),  # latin-1, not UTF-8
        text.encode().replace(b"support", b"supp\x00rt"),
        text.encode() + b"\x00",
        b"\x00" * 1000,
        text.encode().replace(b"\n", b"\r"),
        text.encode().replace(b"\n", b"\r\n"),
        text.encode().replace(b"\n", "\u2028".encode()),
        text.encode()[:-1] + b"\xe2\x82",  # a sequence cut short
        text.encode().replace(b"VIP", b"\xc0\xafVIP"),  # an overlong encoding
        text.encode().replace(b"VIP", b"\xed\xa0\x80"),  # an encoded surrogate
        text.encode().replace(b"VIP", b"\xf4\x90\x80\x80"),  # past U+10FFFF
        b"\x1f\x8b\x08\x00" + bytes(range(256)),  # a gzip header and every byte
        b"\x7fELF\x02\x01\x01" + bytes(200),
    ]
    return st.one_of(st.sampled_from(encoded), st.binary(max_size=4_000))


@hostile(40)
@given(raw=_encodings())
def test_binary_content(raw: bytes) -> None:
    with scratch() as project:
        (project / "binary.yaml").write_bytes(raw)
        check_validate(cli("validate", str(project)))


INTERESTING_BYTES = b"\x00\xff\xfe\x80\xc3\t\n\r :-&*!{}[]|>'\"#%@`,?"


@st.composite
def byte_mutations(draw: st.DrawFn, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(draw(st.integers(1, 8))):
        operation = draw(st.sampled_from(["flip", "insert", "delete", "replace", "repeat", "cut"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        byte = draw(st.sampled_from(INTERESTING_BYTES) | st.integers(0, 255))
        if operation == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif operation == "insert":
            data.insert(at, byte)
        elif operation == "delete" and data:
            del data[at]
        elif operation == "replace" and data:
            data[at] = byte
        elif operation == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 200))]
        elif operation == "cut":
            del data[at:]
    return bytes(data)


@st.composite
def mutated_example(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from([*MANIFEST_FILES, PROJECT_FILE]))
    return name, draw(byte_mutations((EXAMPLES / name).read_bytes()))


@hostile(50)
@given(mutation=mutated_example())
def test_random_byte_mutations_of_the_examples(examples: Path, mutation: tuple[str, bytes]) -> None:
    name, raw = mutation
    with scratch(examples) as project:
        (project / name).write_bytes(raw)
        check_validate(cli("validate", str(project)))


@hostile(25)
@given(mutation=mutated_example())
def test_json_output_of_mutated_examples(examples: Path, mutation: tuple[str, bytes]) -> None:
    name, raw = mutation
    with scratch(examples) as project:
        (project / name).write_bytes(raw)
        check_json(cli("validate", str(project), "--format", "json"))


# --- plan validates first ---------------------------------------------------------------------


@hostile(25)
@given(raw=byte_mutations((EXAMPLES / "queues.yaml").read_bytes()))
def test_plan_refuses_mutated_manifests(tmp_path: Path, raw: bytes) -> None:
    database = tmp_path / "plan.db"  # shared by the examples: plan never writes
    with scratch() as project:
        (project / "queues.yaml").write_bytes(raw)
        check_plan(
            cli("plan", str(project), "--target", f"local:{database}", "--var", "TEAM_SUFFIX=")
        )


@hostile(20)
@given(target=st.sampled_from(EVERY_PATH), new=values)
def test_plan_refuses_wrong_values(
    examples: Path, target: tuple[str, int, KeyPath], new: Any
) -> None:
    name, index, path = target
    document = replaced(EXAMPLE_DATA[name][index], path, new)
    with scratch(examples) as project:
        write_mutated(project, name, index, document)
        database = examples.parent / "plan.db"  # shared by the examples: plan never writes
        check_plan(cli("plan", str(project), "--env", "dev", "--target", f"local:{database}"))


@pytest.mark.parametrize(
    "text",
    [
        "[" * 5_000,
        "- " * 5_000 + "x\n",
        "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        + "".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 10)),
        QUEUE + "  description: " + quote("x" * 3_000_000) + "\n",
        QUEUE + "  !!python/object/apply:os.system ['true']: 1\n",
        "\x00\x01\x02",
    ],
    ids=["deep-flow", "deep-block", "laughs", "huge-string", "python-tag", "binary"],
)
def test_plan_answers_hostile_yaml_with_diagnostics(tmp_path: Path, text: str) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "hostile.yaml").write_text(text, encoding="utf-8")
    answer = cli("plan", str(tmp_path / "m"), "--target", f"local:{tmp_path / 'plan.db'}")
    check_plan(answer)
    assert answer.code == 1
    assert answer.err.endswith("error: no plan: 1 error in the manifests\n")


# --- files that are not plain files -----------------------------------------------------------


def _special(kind: str, folder: Path, name: str = "odd.yaml") -> None:
    """Make ``folder`` hold a valid queue and one odd entry named like a manifest (or like
    the project file, for the ``project-`` kinds)."""
    (folder / "queue.yaml").write_text(QUEUE, encoding="utf-8")
    odd = folder / ("reconciler.yaml" if kind.startswith("project-") else name)
    kind = kind.removeprefix("project-")
    if kind == "directory":
        odd.mkdir()
        (odd / "inner.yaml").write_text("not: [valid", encoding="utf-8")
    elif kind == "broken-link":
        odd.symlink_to(folder / "nowhere")
    elif kind == "link-loop":
        odd.symlink_to(odd)
    elif kind == "unreadable":
        odd.symlink_to("/proc/self/mem")  # a regular file that even root cannot read()
    elif kind == "fifo":
        os.mkfifo(odd)
    elif kind == "dev-zero":
        odd.symlink_to("/dev/zero")
    elif kind == "dev-null":
        odd.symlink_to("/dev/null")
    elif kind == "empty":
        odd.write_bytes(b"")
    else:
        raise AssertionError(kind)


IN_PROCESS_KINDS = ["directory", "broken-link", "link-loop", "unreadable", "dev-null", "empty"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX special files")
@pytest.mark.parametrize("kind", IN_PROCESS_KINDS + [f"project-{k}" for k in IN_PROCESS_KINDS])
def test_files_that_are_not_plain_files(tmp_path: Path, kind: str) -> None:
    _special(kind, tmp_path)
    diagnostics = check_validate(cli("validate", str(tmp_path)))
    if kind.endswith(("broken-link", "link-loop")):
        assert any("cannot read file" in d["message"] for d in diagnostics)
    if kind.endswith(("unreadable", "dev-null")):  # links out of the folder: never opened
        assert any("a link to a file outside" in d["message"] for d in diagnostics)


def test_paths_named_on_the_command_line_that_are_not_files(tmp_path: Path) -> None:
    (tmp_path / "dir.yaml").mkdir()
    for path in [tmp_path / "dir.yaml", tmp_path / "missing.yaml", Path("/dev/zero")]:
        answer = cli("validate", str(path))
        check_validate(answer)
        assert answer.code == 1


# --- real processes for the nastiest inputs ---------------------------------------------------


def _limit_memory() -> None:  # pragma: no cover - runs in the child
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (PROCESS_MEMORY_LIMIT, PROCESS_MEMORY_LIMIT))


def process(*args: str, cwd: Path) -> Answer:
    """``python -m reconciler ARGS`` as a real process, memory-limited, killed if it hangs."""
    environ = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "reconciler", *args],
            cwd=cwd,
            env=environ,
            capture_output=True,
            text=True,
            errors="backslashreplace",
            timeout=PROCESS_TIME_LIMIT * 2,
            preexec_fn=_limit_memory,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"reconciler {' '.join(args)} still running after {PROCESS_TIME_LIMIT * 2}s")
    answer = Answer(args, done.returncode, done.stdout, done.stderr, time.perf_counter() - start)
    assert done.returncode >= 0, f"killed by signal {-done.returncode}: {answer}"
    return answer


NASTY = {
    "deep-flow-100k": "[" * 100_000 + "]" * 100_000,
    "deep-block-seq-100k": "- " * 100_000 + "x\n",
    "billion-laughs": "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    + "".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 10)),
    "megabyte-string-aliased-10k-times": (
        "apiVersion: reconciler.omnichannel/v1\nkind: Queue\nmetadata:\n  name: q\n"
        f"  labels: {{big: &big '{'x' * 1_000_000}${{TEAM_SUFFIX}}', "
        + ", ".join(f"k{i}: *big" for i in range(10_000))
        + "}\nspec: {priority: 1}\n"
    ),
    "8mb-string": QUEUE + "  description: '" + "x" * 8_000_000 + "'\n",
}


@pytest.mark.skipif(sys.platform == "win32", reason="resource limits are POSIX")
@pytest.mark.parametrize("name", list(NASTY))
def test_nastiest_inputs_in_a_real_process(tmp_path: Path, name: str) -> None:
    (tmp_path / "nasty.yaml").write_text(NASTY[name], encoding="utf-8")
    answer = process("validate", "nasty.yaml", "--var", "TEAM_SUFFIX=-dev", cwd=tmp_path)
    check_validate(answer, time_limit=PROCESS_TIME_LIMIT)
    assert answer.code == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX special files")
def test_special_files_in_a_folder_in_a_real_process(tmp_path: Path) -> None:
    """A FIFO named like a manifest (or the project file) would block the read forever, a link
    to /dev/zero would never end: they are refused without reading them."""
    folder = tmp_path / "m"
    folder.mkdir()
    _special("fifo", folder, "fifo.yaml")
    _special("dev-zero", folder, "zero.yaml")
    _special("project-fifo", folder)
    answer = process("validate", "m", cwd=tmp_path)
    diagnostics = check_validate(answer, time_limit=PROCESS_TIME_LIMIT)
    assert answer.code == 1
    refused = sorted(d["file"] for d in diagnostics if "not a regular file" in d["message"])
    assert refused == ["m/fifo.yaml", "m/reconciler.yaml"]
    outside = [d["file"] for d in diagnostics if "a link to a file outside" in d["message"]]
    assert outside == ["m/zero.yaml"]  # a link out of the folder: refused before it is opened


# --- the pure-Python parser (used when PyYAML has no libyaml) ----------------------------------


@hostile(20)
@given(
    recipe=st.one_of(
        deep_nesting(max_depth=400),
        alias_bombs(small=True),
        st.sampled_from(
            [
                'kind: "\\ud800"\n',
                '"\\udfff": 1\n',
                QUEUE + '  "\\ud83d\\ude00": 1\n',
                QUEUE + '  description: "\\U0000d800"\n',
                QUEUE + "  x: \x07\n",
                "\ufeff" + QUEUE,
                QUEUE + "  !!python/name:os.system : 1\n",
            ]
        ).map(lambda text: Recipe("text", text, text)),
    )
)
def test_the_pure_python_parser_on_hostile_yaml(recipe: Recipe) -> None:
    with scratch() as project:
        (project / "hostile.yaml").write_text(recipe.text, encoding="utf-8")
        original = yaml_loader._Parser
        yaml_loader._Parser = yaml_loader._PythonParser
        try:
            answer = cli("validate", str(project), "--var", "TEAM_SUFFIX=-dev")
        finally:
            yaml_loader._Parser = original
        check_validate(answer)
    answer.out.encode("utf-8")  # what a real process must be able to print (no lone surrogate)


# --- control characters in the names a diagnostic repeats -------------------------------------


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_control_characters_in_echoed_names_are_escaped(tmp_path: Path, command: str) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    for number, key in enumerate(["a\nb", "\x1b[2J\x1b[31mred", "line\u2028separator", "cr\rx"]):
        text = QUEUE.replace("name: q", f"name: q{number}") + f"  {quote(key)}: 1\n"
        (folder / f"q{number}.yaml").write_text(text, encoding="utf-8")
    (folder / "new\nline.yaml").write_text("kind: Queue\n", encoding="utf-8")
    args = ["--target", f"local:{tmp_path / 'plan.db'}"] if command == "plan" else []
    answer = cli(command, str(folder), *args)
    if command == "plan":
        check_plan(answer)
    else:
        check_validate(answer)
    assert answer.code == 1
    printed = answer.out + answer.err
    assert not [char for char in printed if not char.isprintable() and char != "\n"], printed


# --- the bugs these tests found, pinned ---------------------------------------------------------

REGRESSIONS = {
    # A decimal integer past Python's 4,300-digit conversion limit: ValueError, "unexpected
    # internal error".
    "long-decimal-integer": (
        QUEUE.replace("priority: 1", "priority: " + "9" * 5_000),
        "6:13: error: integer literal of 5000 characters is too long to be a value",
    ),
    "long-hex-integer": (
        QUEUE.replace("priority: 1", "priority: 0x" + "f" * 5_000),
        "6:13: error: integer literal of 5002 characters is too long to be a value",
    ),
    # "${" with no "}" after it: the variable search was quadratic (a 400 kB string: minutes).
    "unclosed-variable-references": (
        QUEUE + "  description: '" + "${" * 100_000 + "'\n",
        "7:3: error: spec.description: must be at most 2000 characters (is 200000)",
    ),
    # A long string aliased many times: few values, but gigabytes of text once expanded.
    "long-string-aliased": (
        "apiVersion: reconciler.omnichannel/v1\nkind: Queue\nmetadata:\n  name: q\n"
        f"  labels: {{big: &big '{'x' * 200_000}', "
        + ", ".join(f"k{i}: *big" for i in range(100))
        + "}\nspec: {priority: 1}\n",
        "5:17: error: aliases expand this document past 3012050 characters; refusing it as a "
        "possible alias bomb",
    ),
    # An anchor used twice was reported as "...; first occurrence, second occurrence".
    "duplicate-anchor": (
        QUEUE.replace("name: q", "name: &n q").replace("priority: 1", "priority: &n 1"),
        "6:13: error: invalid YAML: found duplicate anchor 'n' (first at line 4)",
    ),
    # libyaml places the end of a file without a final line break on a line that does not exist.
    "end-of-file-without-line-break": (
        QUEUE + "  description: [",
        "7:17: error: invalid YAML: while parsing a flow node, did not find expected node content",
    ),
}


@pytest.mark.parametrize("name", list(REGRESSIONS))
def test_regressions(tmp_path: Path, name: str) -> None:
    text, expected = REGRESSIONS[name]
    (tmp_path / "m.yaml").write_text(text, encoding="utf-8")
    answer = cli("validate", str(tmp_path))
    check_validate(answer)
    assert answer.out.startswith(f"{tmp_path / 'm.yaml'}:{expected}\n"), str(answer)
    assert answer.out.endswith(": 1 error, 0 warnings\n"), str(answer)


def test_an_anchored_key_can_be_aliased(tmp_path: Path) -> None:
    """Before: an anchor on a mapping key was never recorded, so its alias was "undefined"."""
    text = QUEUE.replace("  name: q", "  &key name: q").replace(
        "priority: 1", "priority: 1\n  description: *key"
    )
    (tmp_path / "m.yaml").write_text(text, encoding="utf-8")
    answer = cli("validate", str(tmp_path))
    check_validate(answer)
    assert answer.code == 0, str(answer)


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\U0000dc00", "\\ud83d\\ude00"])
def test_the_pure_python_parser_refuses_surrogate_escapes_like_libyaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, escape: str
) -> None:
    """Before: a key ``"\\ud800"`` reached the output as a lone surrogate, which no UTF-8
    stream can print (a real process failed with UnicodeEncodeError)."""
    (tmp_path / "m.yaml").write_text(QUEUE + f'  "{escape}": 1\n', encoding="utf-8")
    for parser in (yaml_loader._Parser, yaml_loader._PythonParser):
        monkeypatch.setattr(yaml_loader, "_Parser", parser)
        answer = cli("validate", str(tmp_path))
        check_validate(answer)
        assert "found invalid Unicode character escape code" in answer.out, str(answer)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX special files")
def test_a_var_file_may_still_be_a_pipe(tmp_path: Path) -> None:
    """Only files found in a folder must be regular: ``--var-file <(...)`` is a pipe."""
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "q.yaml").write_text(
        QUEUE.replace("priority: 1", "priority: ${P}"), encoding="utf-8"
    )
    pipe = tmp_path / "vars.fifo"
    os.mkfifo(pipe)

    def feed() -> None:
        with open(pipe, "w", encoding="utf-8") as handle:
            handle.write("P: 3\n")

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        answer = cli("validate", str(tmp_path / "m"), "--var-file", str(pipe))
    finally:
        if writer.is_alive():  # the pipe was not read: let the writer finish
            with open(os.open(pipe, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
                writer.join(5)
                handle.read()
    check_validate(answer)
    assert answer.code == 0, str(answer)


@pytest.mark.parametrize("where", ["kind", "explicit-key"])
def test_hints_are_not_computed_over_megabytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    indexed: list[int] = []
    set_seq2 = difflib.SequenceMatcher.set_seq2

    def spy(self: difflib.SequenceMatcher[str], b: str) -> None:
        indexed.append(len(b))
        set_seq2(self, b)

    monkeypatch.setattr(difflib.SequenceMatcher, "set_seq2", spy)
    text = QUEUE.replace("kind: Queue", f"kind: {quote('x' * 1_000_000)}")
    if where == "explicit-key":
        text = QUEUE + f"  ? {quote('k' * 1_000_000)}\n  : 1\n"
    (tmp_path / "m.yaml").write_text(text, encoding="utf-8")
    answer = cli("validate", str(tmp_path))
    check_validate(answer)
    assert answer.code == 1
    assert max(indexed, default=0) < 10_000, "a hint was computed over the whole input"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX special files")
def test_a_secret_file_that_never_ends_is_refused(examples: Path) -> None:
    (examples / "zero.secret").symlink_to("/dev/zero")
    manifest = examples / "facebook.yaml"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(
        text.replace("{fromEnv: FB_APP_SECRET}", "{fromFile: zero.secret}"), encoding="utf-8"
    )
    answer = process(
        "plan", str(examples), "--env", "dev", "--target", "local:plan.db", cwd=examples.parent
    )
    _answered(answer, PROCESS_TIME_LIMIT)
    assert answer.code == 1, str(answer)
    assert "zero.secret" in answer.err, str(answer)
