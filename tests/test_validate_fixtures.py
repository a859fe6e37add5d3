# ruff: noqa: E501
"""One small manifest per validation failure mode (tests/fixtures/invalid/), run through the CLI.

Each fixture holds exactly one problem; the table says where ``validate`` must report it. Paths are
given to the CLI relative to the repository root, so the reported ``file:line:column`` is short.
A fixture in a sub-folder (one that needs its own ``reconciler.yaml``) is validated as a folder.
"""

import datetime
import json
from pathlib import Path

import pytest

from reconciler.cli import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "invalid"
INVALID = FIXTURES.relative_to(ROOT)

TODAY = datetime.date.today()
# A static fixture cannot hold a date relative to today: these fixtures say ${ROTATED}.
ROTATED_TODAY = ("--var", f"ROTATED={TODAY}")
ROTATED_50_DAYS_AGO = ("--var", f"ROTATED={TODAY - datetime.timedelta(days=50)}")  # due in 10 days
ROTATED_NEXT_WEEK = ("--var", f"ROTATED={TODAY + datetime.timedelta(days=7)}")

E, W = "error", "warning"

# One fixture per row (long lines on purpose): the exit code, where its one problem is reported
# (E error, W warning), its code and a part of its message; then, where the fixture needs them,
# extra CLI arguments.
# fmt: off
CASES = [
    # fixture                                  exit line col  sev code                            part of the message
    # YAML
    ("yaml-syntax-error.yaml",                    1,  6,  11, E, "yaml-syntax",                  "this '{' is never closed (noticed at line 7, column 5)"),
    ("yaml-tab-indent.yaml",                      1,  8,   1, E, "yaml-syntax",                  "invalid YAML: a tab character cannot indent YAML; use spaces"),
    ("duplicate-key.yaml",                        1,  9,   3, E, "duplicate-key",                "duplicate key 'priority' (first at line 7)"),
    ("alias-bomb.yaml",                           1,  7,  33, E, "alias-bomb",                   "refusing it as a possible alias bomb"),
    ("yaml-recursive-alias.yaml",                 1,  8,  16, E, "yaml-recursive-alias",         "an alias refers to itself"),
    ("yaml-binary-tag.yaml",                      1,  8,  16, E, "yaml-tag",                     "unsupported YAML tag"),
    ("not-a-manifest.yaml",                       1,  9,   1, E, "not-a-manifest",               "a manifest document is a mapping"),
    # the document envelope
    ("unknown-kind.yaml",                         1,  2,   1, E, "unknown-kind",                 "unknown kind 'Queu'; expected one of Queue"),
    ("missing-kind.yaml",                         1,  1,   1, E, "missing-field",                "missing required field 'kind'"),
    ("wrong-api-version.yaml",                    1,  1,   1, E, "invalid-choice",               "apiVersion: must be 'reconciler.omnichannel/v1'"),
    ("missing-spec.yaml",                         1,  9,   1, E, "missing-field",                "only 'ensure: absent' may omit it"),
    ("invalid-name-uppercase.yaml",               1,  4,   3, E, "invalid-name",                 "metadata.name: must be 1-63 lowercase letters"),
    ("metadata-id-not-a-guid.yaml",               1,  5,   3, E, "invalid-id",                   "metadata.id: must be a GUID"),
    # fields: keys, types, lengths and options
    ("unknown-field-visiblity.yaml",              1,  8,   3, E, "unknown-field",                "unknown field 'visiblity'; did you mean 'visibility'?"),
    ("priority-zero.yaml",                        1,  7,   3, E, "invalid-value",                "spec.priority: must be at least 1"),
    ("bad-assignment.yaml",                       1,  8,   3, E, "invalid-choice",               "spec.assignment: must be 'highest-capacity'"),
    ("bad-duration.yaml",                         1, 29,   3, E, "invalid-duration",             "spec.autoCloseAfterInactivity: '2 days' is not a duration (e.g. 30m, 12h, 2d)"),
    ("queue-display-name-too-long.yaml",          1,  6,   3, E, "string-too-long",              "spec.displayName: must be at most 200 characters"),
    ("page-name-too-long.yaml",                   1, 12,   7, E, "string-too-long",              "spec.pages[1].name: must be at most 100 characters"),
    ("page-id-not-digits.yaml",                   1, 10,   7, E, "invalid-digits",               "spec.pages[0].pageId: must be a string of digits"),
    ("invalid-locale.yaml",                       1, 32,   5, E, "invalid-locale",               "must be a locale code such as nl-NL"),
    ("token-date-with-time.yaml",                 1, 14,   7, E, "invalid-value",                "must be a date (YYYY-MM-DD) without a time", ROTATED_TODAY),
    ("literal-secret.yaml",                       1,  7,   3, E, "literal-secret",               "never a literal value (the value is not shown)"),
    ("secret-file-outside-project.yaml",          1,  8,   3, E, "secret-outside-project",       "secret file ../outside.txt is outside the project folder tests/fixtures/invalid/; move the file into the project folder, or list its folder in RECONCILER_SECRET_DIRS"),
    ("secret-credential-variable.yaml",           1,  8,   3, E, "secret-credential-variable",   "fromEnv names AZURE_CLIENT_SECRET, a credential of the CI system or of the reconciler itself"),
    ("undefined-variable.yaml",                   1,  6,   3, E, "undefined-variable",           "undefined variable 'NOPE'"),
    # names and ids
    ("duplicate-queue-name.yaml",                 1, 20,   3, E, "duplicate-name",               "Queue 'general-support' is defined twice"),
    ("duplicate-id.yaml",                         1, 14,   3, E, "duplicate-id",                 "is also the id of Queue/general-support"),
    ("duplicate-page-name.yaml",                  1, 12,   7, E, "duplicate-page-name",          "page name 'Contoso Support' is used twice"),
    ("duplicate-agent-name.yaml",                 1, 14,   7, E, "duplicate-agent-name",         "agent name 'Contoso Stores' is used twice"),
    ("duplicate-rule-name.yaml",                  1, 53,   7, E, "duplicate-rule-name",          "rule name 'Dutch speakers' is used twice"),
    ("previous-name-is-name.yaml",                1,  7,   7, E, "previous-name-is-name",        "'second-tier' is this Queue's own name, not a previous one"),
    ("previous-name-in-use.yaml",                 1, 13,  19, E, "previous-name-in-use",         "Queue 'tier2' is still in the manifests"),
    ("duplicate-previous-name.yaml",              1, 15,   7, E, "duplicate-previous-name",      "is also named as a previous name of 'second-tier'"),
    ("previous-names-absent.yaml",                1,  5,   3, E, "previous-names-absent",        "a record 'ensure: absent' deletes is not renamed"),
    # references
    ("dangling-fallback-queue.yaml",              1, 27,   3, E, "dangling-reference",           "no Queue named 'general-suport'"),
    ("dangling-facebook-account.yaml",            1, 30,   5, E, "dangling-reference",           "no FacebookAccount named 'contoso-fb'"),
    ("dangling-facebook-page.yaml",               1, 31,   5, E, "dangling-reference",           "has no page named 'Contoso Supprot'"),
    ("dangling-gbm-agent.yaml",                   1, 33,   5, E, "dangling-reference",           "has no agent named 'Contoso Shops'"),
    ("dangling-rule-set-workstream.yaml",         1, 47,   3, E, "dangling-reference",           "no Workstream named 'facebook-suport'"),
    ("dangling-route-to-queue.yaml",              1, 52,   7, E, "dangling-reference",           "no Queue named 'dutch-suport'"),
    ("dangling-allocation-queue.yaml",            1, 54,  12, E, "dangling-reference",           "no Queue named 'overflow-queue'"),
    ("reference-to-absent-queue.yaml",            1, 33,   3, E, "reference-to-absent",          "is marked 'ensure: absent'"),
    # channels
    ("facebook-page-id-reused.yaml",              1, 22,   7, E, "facebook-page-id-reused",      "page ID 104857600000001 is already used by page"),
    ("page-serves-two-workstreams.yaml",          1, 47,   5, E, "channel-instance-reused",      "already serves Workstream 'facebook-support'"),
    ("agent-serves-two-workstreams.yaml",         1, 46,   5, E, "channel-instance-reused",      "already serves Workstream 'gbm-stores'"),
    ("channel-mismatch-extra-block.yaml",         1, 33,   3, E, "channel-mismatch",             "spec.googleBusinessMessages: does not belong"),
    ("channel-mismatch-missing-block.yaml",       1, 27,   3, E, "channel-mismatch",             "channel facebook needs a facebook block"),
    ("affinity-in-pick-mode.yaml",                1, 31,   5, E, "affinity-needs-push",          "agent affinity needs distribution.mode push"),
    ("fallback-queue-not-messaging.yaml",         1, 28,   3, E, "queue-not-messaging",          "Queue 'case-escalations' is a record queue"),
    ("route-to-voice-queue.yaml",                 1, 53,   7, E, "queue-not-messaging",          "Queue 'callback-line' is a voice queue"),
    # routing rules
    ("allocation-six-queues.yaml",                1, 78,   7, E, "allocation-too-many-queues",   "6 queues; a percentage allocation splits over at most 5"),
    ("allocation-sum-90.yaml",                    1, 50,   7, E, "allocation-sum",               "percentages add up to 90; they must add up to 100"),
    ("allocation-duplicate-queue.yaml",           1, 46,  12, E, "allocation-duplicate-queue",   "Queue 'general-support' appears twice"),
    ("too-many-rules.yaml",                       1, 50,   3, E, "too-many-rules",               "101 rules; a rule set holds at most 100"),
    ("two-route-to-queue-sets.yaml",              1, 58,   3, E, "too-many-route-sets",          "already has 1 route-to-queue rule set"),
    ("eleven-classification-sets.yaml",           1, 160,  3, E, "too-many-classification-sets", "already has 10 classification rule sets"),
    ("classification-rule-with-route-to.yaml",    1, 52,   7, E, "rule-shape",                   "routeTo: belongs to route-to-queue rules"),
    ("route-rule-without-route-to.yaml",          1, 51,   7, E, "rule-shape",                   "a route-to-queue rule needs routeTo"),
    ("condition-field-wrong-channel.yaml",        1, 56,  14, E, "condition-field-channel",      "facebook.locale is not available"),
    ("unknown-condition-field.yaml",              1, 49,  14, E, "unknown-condition-field",      "spec.rules[0].when.field: unknown field"),
    ("in-with-single-value.yaml",                 1, 49,   7, E, "invalid-condition",            "in needs a non-empty list as value"),
    ("is-null-with-value.yaml",                   1, 43,   7, E, "invalid-condition",            "isNull takes no value"),
    ("operator-not-written.yaml",                 1, 37,  38, E, "operator-not-written",         "spec.rules[0].when.op: beginsWith cannot be written: no real org was seen to hold its spelling in rule XML (docs/routing-xml.md); use one of equals, notEquals"),
    ("contains-under-not.yaml",                   1, 38,  39, E, "operator-not-written",         "spec.rules[0].when.not.op: contains under not (that is, notContains) cannot be written"),
    ("unknown-context-variable.yaml",             1, 38,  14, E, "unknown-context-variable",     "the workstream has no context variable 'Languge'; declare it in its contextVariables; did you mean 'Language'?"),
    ("number-context-variable.yaml",              1, 27,  22, E, "variable-type-not-written",    "spec.contextVariables.Score: number context variables cannot be written"),
    # policy and time
    ("retired-gbm-channel.yaml",                  0, 29,   3, W, "retired-channel",              "retired on 31 July 2024; move Workstream"),
    ("retired-channel-error/gbm-account.yaml",    3,  2,   1, E, "retired-channel",              "(refused by policy.retiredChannels: error)"),
    ("token-expired.yaml",                        1, 13,   7, E, "token-expired",                "must be refreshed every 60 days"),
    ("token-expiring.yaml",                       0, 14,   7, W, "token-expiring",               "is due for its 60-day refresh", ROTATED_50_DAYS_AGO),
    ("token-date-in-future.yaml",                 1, 14,   7, E, "token-date-in-future",         "is in the future", ROTATED_NEXT_WEEK),
]
# fmt: on

# Fixtures of the tests further down: one with several problems, and ones for bugs found and fixed.
OTHER_FIXTURES = {
    "five-problems.yaml",
    "unknown-field-fallbackqeue.yaml",
    "yaml-int-tag-not-a-number.yaml",
    "secret-with-both-fromenv-and-fromfile.yaml",
    "priority-boolean.yaml",
    "one-pass/accounts.yaml",
    "one-pass/workstream.yaml",
    "project-typo/queue.yaml",
}


@pytest.fixture(autouse=True)
def at_repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("NO_COLOR", raising=False)


def fixture_path(name: str) -> Path:
    """The fixture's file, relative to the repository root."""
    return INVALID / name


def target(path: Path) -> str:
    """What to validate: the file, or the folder of a fixture that has a reconciler.yaml."""
    return str(path.parent if path.parent != INVALID else path)


def run(capsys, *args):
    code = main(["validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *args):
    code, out, err = run(capsys, *args, "--format", "json")
    return code, json.loads(out), err


def errors(payload) -> list[dict]:
    return [d for d in payload["diagnostics"] if d["severity"] == "error"]


def test_every_fixture_is_in_the_table():
    tested = {name for name, *_ in CASES} | OTHER_FIXTURES
    on_disk = {p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*.yaml")}
    on_disk -= {p for p in on_disk if p.endswith("/reconciler.yaml")}
    assert on_disk == tested


@pytest.mark.parametrize(
    ("fixture", "exit_code", "line", "column", "severity", "code", "message", "extra"),
    [pytest.param(*case[:7], case[7] if len(case) > 7 else (), id=case[0]) for case in CASES],
)
def test_fixture_reports_its_one_problem(
    capsys, fixture, exit_code, line, column, severity, code, message, extra
):
    path = fixture_path(fixture)
    assert (ROOT / path).is_file()

    status, out, err = run(capsys, target(path), "--no-color", *extra)
    assert status == exit_code, out
    assert err == ""
    prefix = f"{path}:{line}:{column}: {severity}: "
    hits = [text for text in out.splitlines() if text.startswith(prefix)]
    assert any(message in text for text in hits), f"no {prefix}...{message}... in\n{out}"

    status, payload, err = run_json(capsys, target(path), *extra)
    assert status == exit_code
    assert err == ""
    found = [
        d
        for d in payload["diagnostics"]
        if (d["file"], d["line"], d["column"], d["severity"], d["code"])
        == (str(path), line, column, severity, code)
    ]
    assert found, json.dumps(payload, indent=2)
    assert any(message in d["message"] for d in found)
    assert len(errors(payload)) == (1 if severity == E else 0), json.dumps(payload, indent=2)
    assert payload["summary"]["errors"] == len(errors(payload))


def test_non_utf8_file_is_reported(capsys, tmp_path):
    path = tmp_path / "latin-1.yaml"
    text = (
        "apiVersion: reconciler.omnichannel/v1\nkind: Queue\nmetadata:\n  name: dutch-support\n"
        "spec:\n  displayName: Café support\n  priority: 5\n"
    )
    path.write_bytes(text.encode("latin-1"))
    status, out, err = run(capsys, str(path), "--no-color")
    assert status == 1
    assert err == ""
    # Line 6, column 19: the byte after "  displayName: Caf".
    assert f"{path}:6:19: error: file is not UTF-8 text (invalid byte 0xe9)" in out

    status, payload, _ = run_json(capsys, str(path))
    assert status == 1
    assert [(d["file"], d["line"], d["column"], d["code"]) for d in errors(payload)] == [
        (str(path), 6, 19, "not-utf8")
    ]


@pytest.mark.parametrize("output", ["text", "json"])
def test_literal_secret_value_is_never_printed(capsys, output):
    path = fixture_path("literal-secret.yaml")
    assert "hunter2-literal" in (ROOT / path).read_text()
    status, out, err = run(capsys, str(path), "--no-color", "--format", output)
    assert status == 1
    assert "literal-secret" in out or "never a literal value" in out
    assert "hunter2" not in out
    assert "hunter2" not in err


def test_typo_in_a_required_field_reports_the_hint_and_the_missing_field(capsys):
    path = fixture_path("unknown-field-fallbackqeue.yaml")
    status, out, _ = run(capsys, str(path), "--no-color")
    assert status == 1
    lines = out.splitlines()
    message = "spec: unknown field 'fallbackQeue'; did you mean 'fallbackQueue'?"
    assert f"{path}:8:3: error: {message}" in lines
    assert f"{path}:6:1: error: spec: missing required field 'fallbackQueue'" in lines
    assert lines[-1] == "1 document in 1 file: 2 errors, 0 warnings"


def test_five_problems_in_one_file_are_all_reported(capsys):
    path = fixture_path("five-problems.yaml")
    expected = [
        (17, 3, "invalid-choice", "spec.assignment: must be 'highest-capacity'"),
        (26, 3, "unknown-field", "unknown field 'maxSixe'; did you mean 'maxSize'?"),
        (39, 3, "duplicate-name", "Queue 'general-support' is defined twice"),
        (62, 3, "dangling-reference", "no Queue named 'general-suport'"),
        (79, 7, "allocation-sum", "percentages add up to 90"),
    ]
    status, out, err = run(capsys, str(path), "--no-color")
    assert status == 1
    assert err == ""
    lines = out.splitlines()
    for line, column, _, message in expected:
        prefix = f"{path}:{line}:{column}: error: "
        assert any(t.startswith(prefix) and message in t for t in lines), (prefix, message, out)
    assert lines[-1].endswith(": 5 errors, 0 warnings")

    status, payload, _ = run_json(capsys, str(path))
    assert status == 1
    assert [(d["line"], d["column"], d["code"]) for d in errors(payload)] == [
        (line, column, code) for line, column, code, _ in expected
    ]


# --- behaviour that was wrong once ---------------------------------------------------------


def test_explicit_int_tag_on_a_word_is_a_diagnostic_not_a_crash(capsys):
    path = fixture_path("yaml-int-tag-not-a-number.yaml")
    status, out, err = run(capsys, str(path), "--no-color")
    assert "internal error" not in err
    assert status == 1
    assert any(line.startswith(f"{path}:7:") for line in out.splitlines()), out


def test_secret_with_both_sources_has_a_sensible_message(capsys):
    path = fixture_path("secret-with-both-fromenv-and-fromfile.yaml")
    status, payload, _ = run_json(capsys, str(path))
    assert status == 1
    [problem] = errors(payload)
    assert problem["line"] == 7
    assert "did you mean 'fromFile'" not in problem["message"]


def test_boolean_priority_is_refused(capsys):
    path = fixture_path("priority-boolean.yaml")
    status, payload, _ = run_json(capsys, str(path))
    assert status == 1
    assert [(d["line"], d["column"]) for d in errors(payload)] == [(7, 3)]


def test_agent_reuse_message_reads_an_agent(capsys):
    path = fixture_path("agent-serves-two-workstreams.yaml")
    _, out, _ = run(capsys, str(path), "--no-color")
    assert "an agent serves one workstream" in out


def test_rule_paths_are_printed_like_schema_paths(capsys):
    path = fixture_path("dangling-allocation-queue.yaml")
    _, out, _ = run(capsys, str(path), "--no-color")
    assert "spec.rules[0].routeTo[1].queue: no Queue named 'overflow-queue'" in out


def test_one_document_with_schema_errors_and_cross_check_problems_reports_them_all(capsys):
    """Issue 20: an unknown key, a dangling fallback queue, a page its account (in another
    file) does not have, agent affinity in pick mode and a bad duration, all in one Workstream
    document: one run reports the five, each once."""
    folder = INVALID / "one-pass"
    path = folder / "workstream.yaml"
    expected = [
        (9, 3, "dangling-reference", "spec.fallbackQueue: no Queue named 'general-suport'"),
        (10, 3, "invalid-duration", "spec.autoCloseAfterInactivity: 'soon' is not a duration"),
        (13, 5, "affinity-needs-push", "agent affinity needs distribution.mode push"),
        (16, 5, "dangling-reference", "has no page named 'Contoso Supprot'"),
        (18, 5, "unknown-field", "spec.facebook: unknown field 'shoeSize'"),
    ]
    status, out, err = run(capsys, str(folder), "--no-color")
    assert (status, err) == (1, "")
    lines = out.splitlines()
    for line, column, _, message in expected:
        prefix = f"{path}:{line}:{column}: error: "
        assert any(t.startswith(prefix) and message in t for t in lines), (prefix, message, out)
    assert lines[-1] == "3 documents in 2 files: 5 errors, 0 warnings"

    status, payload, _ = run_json(capsys, str(folder))
    assert [(d["line"], d["column"], d["code"]) for d in errors(payload)] == [
        (line, column, code) for line, column, code, _ in expected
    ]


@pytest.mark.parametrize("env", [(), ("--env", "dev")])
def test_a_typo_in_the_project_file_is_reported_once_without_cascades(capsys, env):
    """``enviroments:`` gave an unknown key plus an "undefined variable" for each ${VAR} the
    environments were meant to define (and, with --env, an unknown environment)."""
    folder = INVALID / "project-typo"
    status, out, err = run(capsys, str(folder), "--no-color", *env)
    assert (status, err) == (1, "")
    assert out.splitlines() == [
        f"{folder / 'reconciler.yaml'}:1:1: error: unknown field 'enviroments'; "
        "did you mean 'environments'?",
        "2 documents in 1 file: 1 error, 0 warnings",
    ]
