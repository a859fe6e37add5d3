"""No ``##vso[`` or ``##[`` from a manifest or an org reaches a CI log (reconciler.render.neutral).

Azure Pipelines' agent runs ``##vso[...]`` found anywhere in a line as a logging command and
reads ``##[...]`` as a formatting command; GitHub's runner reads ``##[...]`` too. Their search
is .NET's culture-sensitive ``IndexOf``, which skips ignorable characters.
"""

from __future__ import annotations

import io
import json
import random
import unicodedata

import pytest

from reconciler.diagnostics import Diagnostic, Location, Severity
from reconciler.render import diagnostics as render_diagnostics
from reconciler.render import neutral
from reconciler.render.style import clean

ATTACK = "##vso[task.setvariable variable=x]y"


def runnable(text: str) -> bool:
    """Whether a runner could read a command in ``text``, in any case, whatever control or
    format character sits between the marks: written from Unicode's categories, not from
    ``neutral``'s list."""
    for line in text.split("\n"):
        kept = "".join(c for c in line if unicodedata.category(c) not in ("Cc", "Cf")).lower()
        if "##vso[" in kept or "##[" in kept:
            return True
    return False


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (ATTACK, "\\u0023#vso[task.setvariable variable=x]y"),
        ("##VSO[task.complete result=Failed]", "\\u0023#VSO[task.complete result=Failed]"),
        ("a ##Vso[x] b ##[group]c", "a \\u0023#Vso[x] b \\u0023#[group]c"),
        ("##[error]boom", "\\u0023#[error]boom"),
        ("###vso[x]", "#\\u0023#vso[x]"),
        ("#\u200b#vso[x]", "\\u0023\u200b#vso[x]"),
        ("##v\u00ads\u200do\ufeff[x]", "\\u0023#v\u00ads\u200do\ufeff[x]"),
        ("#\x00#[x]", "\\u0023\x00#[x]"),
    ],
)
def test_every_sequence_has_its_first_mark_escaped(value, shown):
    assert neutral.text(value) == shown
    assert not runnable(neutral.text(value))


@pytest.mark.parametrize(
    "value",
    ["#vso[x]", "## heading", "##vs[x]", "# #[x]", "#\n#[x]", "issue #12 [x]", "##vso x", ""],
)
def test_what_no_runner_reads_is_left_alone(value):
    assert neutral.text(value) == value


def test_the_ignorable_characters_include_every_control_and_format_character():
    """Every Cc (but the line feed) and Cf character of this Python's Unicode may sit between
    the marks: a newer Unicode may add format characters, this test says so."""
    missing = [
        f"U+{code:04X}"
        for code in range(0x110000)
        if unicodedata.category(chr(code)) in ("Cc", "Cf")
        and code != 0x0A
        and not neutral.has_sequence(f"#{chr(code)}#[")
    ]
    assert missing == []
    assert not neutral.has_sequence("#\n#[")  # both runners read a line at a time


def test_json_keeps_its_values():
    values = [ATTACK, "##[group]x", "#\u200b#vso[", "\\##vso[", {"##vso[k]": ["##[x]"]}]
    for value in values:
        for document in (json.dumps(value), json.dumps(value, ensure_ascii=False, indent=2)):
            neutralised = neutral.json_text(document)
            assert not runnable(neutralised)
            assert json.loads(neutralised) == value


def test_random_text_is_neutral_and_says_what_it_was():
    rng = random.Random(19)
    alphabet = "##vVsSoO[] x\u200b\u00ad\\u\n"
    for _ in range(3000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        shown = neutral.text(value)
        assert not runnable(shown), value
        assert json.loads(neutral.json_text(json.dumps(value))) == value


def test_clean_applies_the_rule_after_escaping_controls():
    assert clean("a\n##vso[x]") == "a\\n\\u0023#vso[x]"
    assert clean("#\u200b#vso[x]") == "#\\u200b#vso[x]"  # escaped: no longer ignorable
    assert clean(clean(ATTACK)) == clean(ATTACK)


def test_github_annotations_carry_no_sequence_in_properties_or_message():
    diagnostic = Diagnostic(
        Severity.ERROR,
        "unknown-field",
        f"spec: unknown field '{ATTACK}'",
        Location(f"dir/{ATTACK}.yaml", 3, 1),
    )
    line = render_diagnostics.annotation(diagnostic)
    assert not runnable(line)
    assert line.startswith("::error file=dir/\\u0023#vso[task.setvariable variable=x]y.yaml,")
    text = render_diagnostics.to_text([diagnostic], 1, 1)
    assert not runnable(text)
    document = render_diagnostics.to_json([diagnostic], 1, 1)
    assert not runnable(document)
    parsed = json.loads(document)["diagnostics"][0]
    assert parsed["message"] == f"spec: unknown field '{ATTACK}'"
    assert parsed["file"] == f"dir/{ATTACK}.yaml"


# --- the guard on stdout and stderr -----------------------------------------------------------


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_sequence_split_over_writes_is_caught():
    out = io.StringIO()
    guard = neutral.Guard(out)
    for piece in ("line one\nsee #", "\u200b", "#", "v", "SO", "[task.complete]x\n"):
        guard.write(piece)
    guard.flush()
    assert out.getvalue() == "line one\nsee \\u0023\u200b#vSO[task.complete]x\n"


def test_a_flush_writes_a_held_end_so_that_nothing_later_completes_it():
    out = io.StringIO()
    guard = neutral.Guard(out)
    guard.write("prompt ##v")
    assert out.getvalue() == "prompt "
    guard.flush()
    assert out.getvalue() == "prompt \\u0023\\u0023v"
    guard.write("so[x]\n")
    assert not runnable(out.getvalue())


def test_the_guard_writes_what_is_not_a_sequence_at_once_and_keeps_the_stream_s_looks():
    out = Tty()
    guard = neutral.Guard(out)
    assert guard.write("# heading\nplain") == len("# heading\nplain")
    assert out.getvalue() == "# heading\nplain"
    assert guard.isatty()
    assert guard.getvalue() == out.getvalue()  # anything else is the stream's own
    guard.writelines(["a", "b\n"])
    assert out.getvalue().endswith("ab\n")


def test_random_writes_and_flushes_never_let_a_sequence_through():
    rng = random.Random(2024)
    alphabet = "##vVsSoO[]x \u200b\n"
    for _ in range(1500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        out = io.StringIO()
        guard = neutral.Guard(out)
        position = flushes = 0
        while position < len(text):
            step = rng.randint(1, 5)
            guard.write(text[position : position + step])
            position += step
            if rng.random() < 0.2:
                guard.flush()
                flushes += 1
        if not flushes:  # without flushes, exactly the renderers' rule
            assert out.getvalue() + guard._held == neutral.text(text)
        guard.flush()
        for line in out.getvalue().split("\n"):
            assert not runnable(line), (text, out.getvalue())


def test_the_guard_is_quick_on_a_large_document():
    document = json.dumps(
        {"changes": [{"name": f"q{i}", "note": "# x ##vso"} for i in range(10**5)]}
    )
    out = io.StringIO()
    guard = neutral.Guard(out)
    guard.write(document)
    guard.flush()
    assert out.getvalue() == document  # "##vso" without "[" is no command
