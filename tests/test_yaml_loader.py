import math

import pytest
from yaml.parser import ParserError
from yaml.scanner import ScannerError

from reconciler.diagnostics import Location
from reconciler.manifest import yaml_loader
from reconciler.manifest.yaml_loader import load_file, load_text


@pytest.fixture(params=["libyaml", "python"], autouse=True)
def parser(request, monkeypatch):
    """Every test runs on libyaml's parser (the default) and on PyYAML's pure-Python one."""
    if request.param == "python":
        monkeypatch.setattr(yaml_loader, "_Parser", yaml_loader._PythonParser)
    else:
        assert yaml_loader._Parser is not yaml_loader._PythonParser
    return request.param


def only(text: str):
    result = load_text(text, "m.yaml")
    assert result.diagnostics == []
    (document,) = result.documents
    return document


def test_positions_point_at_keys_and_sequence_items():
    document = only("a: 1\nb:\n  c: [x, y]\n  d:\n    - e: 2\n      f: 3\n")
    assert document.positions[("a",)] == (1, 1)
    assert document.positions[("b", "c")] == (3, 3)
    assert document.positions[("b", "c", 1)] == (3, 10)
    assert document.positions[("b", "d", 0)] == (5, 7)
    assert document.positions[("b", "d", 0, "f")] == (6, 7)
    assert str(document.location(("b", "d", 0, "f"))) == "m.yaml:6:7"


def test_location_of_an_unknown_path_falls_back_to_the_nearest_ancestor():
    document = only("spec:\n  priority: 1\n")
    assert str(document.location(("spec", "nope", 3))) == "m.yaml:1:1"
    assert str(document.location(("spec", "priority", "x"))) == "m.yaml:2:3"


def test_multiple_documents_and_empty_ones():
    result = load_text("a: 1\n---\n# only a comment\n---\nb: 2\n", "m.yaml")
    assert [d.data for d in result.documents] == [{"a": 1}, {"b": 2}]
    assert [d.index for d in result.documents] == [0, 2]
    assert result.documents[1].positions[("b",)] == (5, 1)


def test_scalars_follow_yaml_1_2_core():
    data = only(
        "a: no\nb: on\nc: 0123\nd: 2024-01-01\ne: true\nf: ~\ng: 1.5\nh: 0x1F\ni: 0o17\n"
        "j: .inf\nk: -.inf\nl: 'true'\nm: !!str 12\nn: null\no: 1e3\n"
    ).data
    assert data["a"] == "no"
    assert data["b"] == "on"
    assert data["c"] == 123
    assert data["d"] == "2024-01-01"
    assert data["e"] is True
    assert data["f"] is None
    assert data["g"] == 1.5
    assert data["h"] == 31
    assert data["i"] == 15
    assert data["j"] == math.inf
    assert data["k"] == -math.inf
    assert data["l"] == "true"
    assert data["m"] == "12"
    assert data["n"] is None
    assert data["o"] == 1000.0
    assert math.isnan(only("x: .nan").data["x"])


def test_anchors_aliases_and_merge_keys():
    data = only(
        "base: &base {a: 1, b: 1}\nother: &other {b: 2, c: 2}\n"
        "one: {<<: *base, a: 9}\ntwo: {<<: [*base, *other]}\nlist: [*base]\n"
    ).data
    assert data["one"] == {"a": 9, "b": 1}
    assert data["two"] == {"a": 1, "b": 1, "c": 2}  # earlier merge sources win
    assert data["list"] == [{"a": 1, "b": 1}]
    aliased = only("a: &a {x: [1, 2]}\nb: *a\nc: {d: *a}\n")
    assert aliased.data["b"] == aliased.data["c"]["d"] == {"x": [1, 2]}
    assert aliased.positions[("c", "d", "x", 1)] == (1, 15)  # where the anchored value is


def test_duplicate_keys_are_reported_at_the_second_key_and_the_first_value_is_kept():
    result = load_text("a: 1\nb:\n  c: 1\n  c: 2\n", "m.yaml")
    (diagnostic,) = result.diagnostics
    assert diagnostic.code == "duplicate-key"
    assert str(diagnostic.location) == "m.yaml:4:3"
    assert "first at line 3" in diagnostic.message
    assert result.documents[0].data["b"] == {"c": 1}


def billion_laughs(levels: int) -> str:
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels):
        refs = ", ".join([f"*l{level - 1}"] * 10)
        lines.append(f"l{level}: &l{level} [{refs}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused():
    result = load_text(billion_laughs(9), "bomb.yaml")
    assert result.documents == []
    (diagnostic,) = result.diagnostics
    assert diagnostic.code == "alias-bomb"
    assert "alias bomb" in diagnostic.message


def test_moderate_alias_use_is_fine():
    # 3 levels: 1,000 expanded values from 30 written, well within the allowance.
    document = only(billion_laughs(3))
    assert len(document.data["l2"]) == 10


def test_large_documents_without_aliases_are_not_mistaken_for_bombs():
    text = "items:\n" + "".join(f"  - {{name: n{i}, value: {i}}}\n" for i in range(20_000))
    assert len(only(text).data["items"]) == 20_000


def test_recursive_alias_is_refused():
    result = load_text("a: &a [1, *a]\n", "m.yaml")
    assert [d.code for d in result.diagnostics] == ["yaml-recursive-alias"]
    merge = load_text("a: &a {<<: *a}\n", "m.yaml")
    assert [d.code for d in merge.diagnostics] == ["yaml-recursive-alias"]


def test_deep_nesting_is_refused_without_a_crash():
    shallow_enough = "a: " + "[" * (yaml_loader.MAX_DEPTH + 5) + "]" * (yaml_loader.MAX_DEPTH + 5)
    assert [d.code for d in load_text(shallow_enough, "m.yaml").diagnostics] == ["yaml-too-deep"]
    very_deep = "[" * 20_000
    assert [d.code for d in load_text(very_deep, "m.yaml").diagnostics] == ["yaml-too-deep"]


@pytest.mark.parametrize(
    ("text", "libyaml_at", "python_at"),
    [
        # libyaml reads ahead through open flow sequences (each could start a key) and refuses
        # them at its own limit of 1,000 levels, before our limit of 64 is reached.
        ("[" * 20_000, "m.yaml:1:1001", "m.yaml:1:66"),
        ("[" * 1_001 + "]" * 1_001, "m.yaml:1:1001", "m.yaml:1:66"),
        # (the mapping around counts as one of libyaml's levels)
        ("a: 1\n---\nb: " + "[" * 2_000 + "\n", "m.yaml:3:1003", "m.yaml:3:68"),
        # Under libyaml's limit, or nesting it hands over as it reads: our own limit.
        ("[" * 1_000 + "]" * 1_000, "m.yaml:1:66", "m.yaml:1:66"),
        ("{a: " * 2_000, "m.yaml:1:261", "m.yaml:1:261"),
        ("- " * 2_000 + "x\n", "m.yaml:1:131", "m.yaml:1:131"),
    ],
)
def test_nesting_too_deep_is_the_same_diagnostic_on_either_parser(
    parser, text, libyaml_at, python_at
):
    result = load_text(text, "m.yaml")
    assert [d.data for d in result.documents] == ([{"a": 1}] if text.startswith("a: 1") else [])
    (diagnostic,) = result.diagnostics
    assert diagnostic.code == "yaml-too-deep"
    assert diagnostic.message == (
        "document nests deeper than 64 levels; the rest of the file is not read"
    )
    assert str(diagnostic.location) == (libyaml_at if parser == "libyaml" else python_at)


def test_libyaml_refusing_block_nesting_is_too_deep_too(parser):
    """A refused document is read to its end without being built: libyaml's block limit can
    stop that reading (the pure-Python parser has no limit of its own)."""
    text = "a: !!binary x\nb:\n" + "".join("  " * i + "k:\n" for i in range(1, 1_100))
    codes = [(d.code, str(d.location)) for d in load_text(text, "m.yaml").diagnostics]
    if parser == "libyaml":
        assert codes == [("yaml-tag", "m.yaml:1:4"), ("yaml-too-deep", "m.yaml:1001:2000")]
    else:
        assert codes == [("yaml-tag", "m.yaml:1:4")]


LIBYAML_DEPTH = "exceeded maximum nesting depth"


@pytest.mark.parametrize(
    ("error", "too_deep"),
    [
        (ScannerError("while increasing flow level", None, LIBYAML_DEPTH), True),
        (ScannerError("while increasing block level", None, LIBYAML_DEPTH), True),
        (ScannerError("while increasing flow level", None, "something else"), False),
        (ScannerError("while scanning a simple key", None, LIBYAML_DEPTH), False),
        (ScannerError(None, None, LIBYAML_DEPTH), False),
        (ParserError("while increasing flow level", None, LIBYAML_DEPTH), False),
    ],
)
def test_only_libyamls_own_nesting_refusal_is_taken_for_too_deep(error, too_deep):
    assert yaml_loader._libyaml_too_deep(error) is too_deep


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("a: !!binary aGk=\n", "yaml-tag"),
        ("a: !custom x\n", "yaml-tag"),
        ("? [a, b]\n: 1\n", "yaml-key"),
        ("a: {<<: 1}\n", "yaml-merge"),
        ("a: [1\nb: 2\n", "yaml-syntax"),
        ("a: b: c\n", "yaml-syntax"),
        ("a: \x07\n", "yaml-syntax"),
    ],
)
def test_malformed_yaml_becomes_a_diagnostic(text, code):
    result = load_text(text, "m.yaml")
    assert [d.code for d in result.diagnostics] == [code]
    assert result.diagnostics[0].location is not None


def test_syntax_errors_point_at_the_problem():
    (diagnostic,) = load_text("a: 1\nb: [1, 2\nc: x: 3\n", "m.yaml").diagnostics
    assert diagnostic.location is not None
    assert diagnostic.message.startswith("invalid YAML:")


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("a: 1\nb: [1, 2\nc: 3\n", 2, 4, "this '[' is never closed (noticed at line 3, column 2)"),
        ("a: 1\nb: {x: 1, y: 2\nc: 3\n", 2, 4, "this '{' is never closed (noticed at line 3"),
        ("a:\n  b: [1, {x: 2}\n  c: 3\n", 2, 6, "this '[' is never closed (noticed at line 3"),
        ("a: [1, 2\n", 1, 4, "this '[' is never closed (noticed at the end of the file)"),
        ("a: [\n  1,\n  2\nb: 3\n", 1, 4, "this '[' is never closed (noticed at line 4"),
        ('a: "abc\nb: 2\n', 1, 4, "this double-quoted string is never closed"),
        ("a: [x, 'y]\n", 1, 8, "this single-quoted string is never closed"),
    ],
)
def test_an_unclosed_bracket_or_quote_is_reported_where_it_opens(text, line, column, message):
    (diagnostic,) = load_text(text, "m.yaml").diagnostics
    assert (diagnostic.code, diagnostic.location) == (
        "yaml-syntax",
        Location("m.yaml", line, column),
    )
    assert message in diagnostic.message


@pytest.mark.parametrize(
    "text",
    [
        "a: [x, y: 1: 2]\n",  # closed, with something else wrong inside
        'a: ["x" "y"] # ]\n',
        "a: ['x]', b c: d: e]\n",
    ],
)
def test_a_closed_bracket_keeps_the_parsers_own_words_and_place(text):
    (diagnostic,) = load_text(text, "m.yaml").diagnostics
    assert diagnostic.code == "yaml-syntax"
    assert "never closed" not in diagnostic.message
    assert diagnostic.location is not None
    assert diagnostic.location.line == 1


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("a:\n\tb: 1\n", 2, 1),
        ("a:\n  b: 1\n\tc: 2\n", 3, 1),
        ("spec:\n  x: 1\n  \ty: 2\n", 3, 3),
        ("a:\n  - x\n\t- y\n", 3, 1),
        ("\ta: 1\n", 1, 1),
    ],
)
def test_a_tab_used_to_indent_says_tab_at_the_tab(text, line, column):
    (diagnostic,) = load_text(text, "m.yaml").diagnostics
    assert diagnostic.location == Location("m.yaml", line, column)
    assert diagnostic.message == "invalid YAML: a tab character cannot indent YAML; use spaces"


def test_documents_before_a_syntax_error_are_kept():
    result = load_text("a: 1\n---\nb: [\n", "m.yaml")
    assert [d.data for d in result.documents] == [{"a": 1}]
    assert [d.code for d in result.diagnostics] == ["yaml-syntax"]


def test_files_that_are_not_utf8_or_not_readable(tmp_path):
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"a: \xff\xfe\x00\x01\n")
    assert [d.code for d in load_file(str(binary)).diagnostics] == ["not-utf8"]
    assert [d.code for d in load_file(str(tmp_path)).diagnostics] == ["unreadable-file"]
    bom = tmp_path / "bom.yaml"
    bom.write_bytes("\ufeffa: 1\n".encode())
    assert load_file(str(bom)).documents[0].data == {"a": 1}


def test_control_characters_are_located_by_line_and_column():
    (diagnostic,) = load_text("a: 1\nb: ok\nc: x\x07y\n", "m.yaml").diagnostics
    assert diagnostic.code == "yaml-syntax"
    assert str(diagnostic.location) == "m.yaml:3:5"
    assert "control characters" in diagnostic.message or "special characters" in diagnostic.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: *nowhere\n", "found undefined alias 'nowhere'"),
        ("- &a 1\n- &a 2\n", "found duplicate anchor 'a'"),
    ],
)
def test_undefined_aliases_and_duplicate_anchors_are_syntax_errors(text, message):
    (diagnostic,) = load_text(text, "m.yaml").diagnostics
    assert diagnostic.code == "yaml-syntax"
    assert message in diagnostic.message


def test_a_refused_document_does_not_stop_the_next_one():
    result = load_text("a: &a [1, *a]\nb: 2\n---\nc: 3\n", "m.yaml")
    assert [d.code for d in result.diagnostics] == ["yaml-recursive-alias"]
    assert str(result.diagnostics[0].location) == "m.yaml:1:11"  # at the alias
    assert [d.data for d in result.documents] == [{"c": 3}]


def test_nesting_too_deep_stops_the_file_and_keeps_what_came_before():
    result = load_text("a: 1\n---\nb: " + "[" * 100 + "]" * 100 + "\n---\nc: 3\n", "m.yaml")
    assert [d.data for d in result.documents] == [{"a": 1}]
    (diagnostic,) = result.diagnostics
    assert diagnostic.code == "yaml-too-deep"
    assert "the rest of the file is not read" in diagnostic.message


def test_aliases_as_keys_and_non_specific_tags():
    data = only("k: &k name\n*k : 2\nn: ! 12\nq: ! '12'\nm: 12\n").data
    assert data == {"k": "name", "name": 2, "n": "12", "q": "12", "m": 12}


def test_nested_merges_are_refused_not_a_crash():
    result = load_text("a: " + "{<<: " * 300 + "{x: 1}" + "}" * 300 + "\n", "m.yaml")
    assert [d.code for d in result.diagnostics] == ["yaml-too-deep"]


def test_positions_found_later_from_deep_in_the_stack_do_not_crash():
    (document,) = load_text(
        "spec: " + "{<<: " * 60 + "{bogus: 1}" + "}" * 60 + "\n", "m.yaml"
    ).documents

    def deep(n: int):
        return deep(n - 1) if n else document.location(("spec", "bogus"))

    assert deep(400).line == 1


def test_an_anchored_merge_list_can_be_aliased_and_merge_may_be_tagged():
    result = load_text(
        "c:\n  <<: &l [{x: 1}]\n  y: 2\nd:\n  <<: *l\ne: {!!merge <<: *l}\n", "m.yaml"
    )
    assert result.diagnostics == []
    assert result.documents[0].data == {"c": {"x": 1, "y": 2}, "d": {"x": 1}, "e": {"x": 1}}
