"""One ``validate`` run reports every problem, each once: a document's schema errors do not hide
its cross-checks, and a schema error is never reported again as a second, made-up problem.
Messages name the offending value, except a secret's. In-process, on small files in tmp_path.
"""

from __future__ import annotations

import datetime
import textwrap
from pathlib import Path

import pytest

from reconciler.validate.pipeline import Options, validate

HEAD = "apiVersion: reconciler.omnichannel/v1\n"

ACCOUNT = HEAD + textwrap.dedent(
    """\
    kind: FacebookAccount
    metadata: {name: contoso-facebook}
    spec:
      applicationId: "100000000000001"
      applicationSecret: {fromEnv: FB_APP_SECRET}
      pages:
        - name: Contoso Support
          pageId: "104857600000001"
          accessToken: {fromEnv: FB_PAGE_TOKEN}
    ---
    """
)
QUEUES = HEAD + textwrap.dedent(
    """\
    kind: Queue
    metadata: {name: general-support}
    spec: {displayName: General support, priority: 10}
    ---
    """
)
WORKSTREAM = HEAD + textwrap.dedent(
    """\
    kind: Workstream
    metadata: {name: facebook-support}
    spec:
      channel: facebook
      fallbackQueue: general-support
      contextVariables: {Language: text}
      facebook: {account: contoso-facebook, page: Contoso Support, language: nl-NL}
    ---
    """
)


def problems(tmp_path: Path, *texts: str, **options: object) -> list[tuple[str, str]]:
    """``(code, message)`` of every error of validating ``texts``, one file each."""
    for index, text in enumerate(texts):
        (tmp_path / f"m{index}.yaml").write_text(text.removesuffix("---\n"))
    report = validate(
        Options(paths=[str(tmp_path)], today=datetime.date(2025, 1, 1), environ={}, **options)  # type: ignore[arg-type]
    )
    return [(d.code, d.message) for d in report.errors]


def test_a_schema_error_does_not_hide_the_documents_cross_checks(tmp_path):
    workstream = WORKSTREAM.replace("general-support", "general-suport").replace(
        "page: Contoso Support", "page: Contoso Supprot, shoeSize: 42"
    )
    workstream = workstream.replace(
        "channel: facebook", "channel: facebook\n  distribution: {mode: pick, agentAffinity: true}"
    )
    found = problems(tmp_path, ACCOUNT + QUEUES, workstream)
    assert sorted(code for code, _ in found) == [
        "affinity-needs-push",
        "dangling-reference",
        "dangling-reference",
        "unknown-field",
    ]
    messages = "\n".join(message for _, message in found)
    assert "spec.facebook: unknown field 'shoeSize'" in messages
    assert "no Queue named 'general-suport'" in messages
    assert "has no page named 'Contoso Supprot'" in messages


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # The only page is invalid: the account lists no page, but the workstream's page is
        # not reported missing.
        (("account", 'pageId: "104857600000001"', "pageId: page-one"), ["invalid-digits"]),
        # A required value of the facebook block is invalid: the block is left out, but the
        # workstream is not told it needs one; its other cross-checks still run.
        (
            ("workstream", "language: nl-NL", "language: dutch"),
            ["invalid-locale"],
        ),
        # A context variable's type is invalid: rules that test it are not told it is undeclared.
        (("workstream", "Language: text", "Language: txt"), ["invalid-choice"]),
        # The workstream's record is unreadable (ensure): references to it are not dangling.
        (
            (
                "workstream",
                "metadata: {name: facebook-support}",
                "metadata: {name: facebook-support, ensure: gone}",
            ),
            ["invalid-choice"],
        ),
    ],
)
def test_a_schema_error_is_not_reported_again_as_another_problem(tmp_path, change, expected):
    where, old, new = change
    texts = {"account": ACCOUNT + QUEUES, "workstream": WORKSTREAM}
    texts[where] = texts[where].replace(old, new)
    rules = HEAD + textwrap.dedent(
        """\
        kind: RoutingRuleSet
        metadata: {name: routing}
        spec:
          workstream: facebook-support
          type: route-to-queue
          rules:
            - name: Dutch
              when: {field: context.Language, op: equals, value: nl}
              routeTo: general-support
        """
    )
    found = problems(tmp_path, texts["account"], texts["workstream"], rules)
    assert [code for code, _ in found] == expected, found


def test_an_invalid_allocation_item_does_not_make_the_percentages_wrong(tmp_path):
    rules = HEAD + textwrap.dedent(
        """\
        kind: RoutingRuleSet
        metadata: {name: routing}
        spec:
          workstream: facebook-support
          type: route-to-queue
          rules:
            - name: Spread
              routeTo:
                - {queue: nowhere, percent: 50}
                - {queue: general-support, percent: lots}
            - name: Other
              routeTo: 7
        """
    )
    found = problems(tmp_path, ACCOUNT + QUEUES, WORKSTREAM, rules)
    codes = sorted(code for code, _ in found)
    # The invalid percent and routeTo, and the dangling queue before them; no "adds up to 50"
    # and no "needs routeTo".
    assert "allocation-sum" not in codes
    assert "rule-shape" not in codes
    assert (
        "dangling-reference",
        "spec.rules[0].routeTo[0].queue: no Queue named 'nowhere' in the manifests",
    ) in found
    assert len(found) == 3, found


def test_a_value_whose_variable_is_undefined_is_reported_once(tmp_path):
    workstream = WORKSTREAM.replace("page: Contoso Support", "page: '${PAGE}'")
    found = problems(tmp_path, ACCOUNT + QUEUES, workstream)
    assert [code for code, _ in found] == ["undefined-variable"]


def test_a_broken_project_file_is_reported_once(tmp_path):
    (tmp_path / "reconciler.yaml").write_text(
        "enviroments:\n  dev:\n    vars: {QUEUE: general-support}\n"
    )
    queue = QUEUES.replace("general-support", "'${QUEUE}'")
    found = problems(tmp_path, queue)
    assert found == [("unknown-field", "unknown field 'enviroments'; did you mean 'environments'?")]
    # --env dev: not "unknown environment" (the typo hides it): the same one error.
    assert problems(tmp_path, queue, env="dev") == found


def test_a_project_files_valid_environments_still_apply(tmp_path):
    (tmp_path / "reconciler.yaml").write_text(
        "namespace: not-a-guid\nenvironments:\n  dev:\n    vars: {QUEUE: general-support}\n"
    )
    found = problems(tmp_path, QUEUES.replace("general-support", "'${QUEUE}'"), env="dev")
    assert [code for code, _ in found] == ["invalid-value"]
    assert "namespace: must be a GUID, not 'not-a-guid'" in found[0][1]


@pytest.mark.parametrize(
    ("old", "new", "shown"),
    [
        ("priority: 10", "priority: 0", "spec.priority: must be at least 1, not 0"),
        ("priority: 10", "priority: {a: 1}", "spec.priority: must be an integer, not a mapping"),
        ("priority: 10", "priority: yes", "spec.priority: must be an integer, not 'yes'"),
        ("General support", "'" + "x" * 300 + "'", "must be at most 200 characters (is 300)"),
        (
            "priority: 10",
            'assignment: "round\\u001brobin' + "!" * 80 + '"',
            "not 'round\\x1brobin!!!",
        ),
    ],
)
def test_messages_name_the_offending_value(tmp_path, old, new, shown):
    (message,) = (m for _, m in problems(tmp_path, QUEUES.replace(old, new)))
    assert shown in message
    assert "\x1b" not in message
    if "robin" in shown:
        assert message.endswith("…'")
        assert len(message) < 200


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("{fromEnv: FB_PAGE_TOKEN}", "{fromEnv: 'hunter2 token'}"),
        ("{fromEnv: FB_PAGE_TOKEN}", "{fromEnv: FB_PAGE_TOKEN, extra: hunter2}"),
        ("{fromEnv: FB_PAGE_TOKEN}", "{fromFile: [hunter2]}"),
        ("{fromEnv: FB_PAGE_TOKEN}", "hunter2"),
        ("{fromEnv: FB_APP_SECRET}", "12345hunter2"),
        ("{fromEnv: FB_APP_SECRET}", "{fromEnv: 12345}"),
    ],
)
def test_a_value_in_a_secrets_place_is_never_shown(tmp_path, old, new):
    found = problems(tmp_path, ACCOUNT.replace(old, new))
    assert found
    assert not any("hunter2" in m or "12345" in m for _, m in found), found
