from reconciler.manifest.variables import scalar_to_text, substitute


def run(data, variables):
    result, problems = substitute(data, variables)
    return result, [(path, code) for path, code, _ in problems]


def test_values_are_substituted_everywhere_but_keys_stay():
    data = {"${A}": "x ${A} y", "list": ["${B}", 3, None, {"deep": "${A}${B}"}]}
    result, problems = run(data, {"A": "1", "B": "two"})
    assert problems == []
    assert result == {"${A}": "x 1 y", "list": ["two", 3, None, {"deep": "1two"}]}
    assert data["list"][0] == "${B}"  # the input is not modified


def test_escaped_references_stay_literal():
    result, problems = run({"a": "$${A} and ${A}"}, {"A": "v"})
    assert result == {"a": "${A} and v"}
    assert problems == []


def test_undefined_and_malformed_references_are_reported_with_their_path():
    result, problems = run({"a": ["${MISSING}"], "b": "${not valid}"}, {})
    assert problems == [(("a", 0), "undefined-variable"), (("b",), "invalid-variable")]
    assert result == {"a": ["${MISSING}"], "b": "${not valid}"}


def test_scalar_values_become_text():
    assert scalar_to_text(True) == "true"
    assert scalar_to_text(False) == "false"
    assert scalar_to_text(None) == ""
    assert scalar_to_text(12) == "12"
