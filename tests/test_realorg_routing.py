"""Routing against orgs as they really are, over the emulator's Web API.

- The shipped examples, applied: every rule set in the target is written the way real orgs hold
  them (docs/routing-xml.md), and a second plan is empty.
- An org made the way the admin center makes it (tests/realorg.py): exported with nothing
  skipped, and the export plans to no change once its secrets are filled in.
- A manifest using an operator no real org was seen to hold fails validate at its line.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from apply_helpers import environ, reconciler
from examples_project import ROOT, SECRETS
from realgrammar import CONTRACTS, RULES
from realorg import SECRETS as ORG_SECRETS
from realorg import Org
from served import Served

from reconciler.mapping import rulegrammar as g

EIGHT = {"==", "!=", ">", "<", ">=", "<=", "contains", "not-null"}


@pytest.fixture
def emulator(tmp_path: Path):
    with Served(tmp_path / "org.db") as served:
        yield served


def test_the_examples_are_written_as_real_orgs_hold_rules(tmp_path: Path, emulator: Served):
    key = tmp_path / "gbm-service-account.json"
    key.write_text('{"type": "service_account"}\n')
    project = tmp_path / "examples"
    project.mkdir()
    for source in ROOT.joinpath("examples").glob("*.yaml"):
        (project / source.name).write_text(source.read_text())
    (project / "gbm-service-account.json").write_text(key.read_text())
    env = environ(**SECRETS)
    target = ("--target", emulator.url, "--env", "dev")
    applied = reconciler("apply", project, "--yes", *target, env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr

    rule_sets = emulator.rows("msdyn_decisionrulesets")
    assert len(rule_sets) == 4
    splits = 0
    for row in rule_sets:
        assert row["msdyn_rulesettype"] == 192350000, row["msdyn_name"]
        xml = row["msdyn_rulesetdefinition"]
        assert "datatype" not in xml
        root = ET.fromstring(xml)
        assert {c.get("operator") for c in root.iter("condition")} <= EIGHT
        assert {group.get("operator") for group in root.iter("logical")} <= {"AND", "OR"}
        for upsert in root.iter("upsertrecords"):
            assert upsert.findtext("target") == g.SPLIT_TARGET
            splits += 1
    assert splits == 1
    for row in rule_sets:  # every element, attribute and operator one a real export shows
        RULES.check(row["msdyn_rulesetdefinition"])
    contracts = [
        row["msdyn_contractdefinition"]
        for row in emulator.rows("msdyn_decisioncontracts")
        if row["msdyn_uniquename"] != "msdyn_demandqueueidentificationoutput"
    ]
    assert len(contracts) == 3
    for xml in contracts:
        CONTRACTS.check(xml)

    again = reconciler("plan", project, "--detailed-exitcode", *target, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes" in again.stdout


def test_an_org_made_in_the_admin_center_exports_and_plans_to_no_change(
    tmp_path: Path, emulator: Served
):
    org = Org(emulator).make()
    out = tmp_path / "exported"
    exported = reconciler("export", "--out", out, "--target", emulator.url, env=environ())
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert "skipped" not in exported.stderr, exported.stderr
    assert "not exported" not in exported.stdout, exported.stdout

    documents = [
        d
        for path in sorted(out.rglob("*.yaml"))
        if path.name != "reconciler.yaml"
        for d in yaml.safe_load_all(path.read_text())
    ]
    kinds = sorted(d["kind"] for d in documents)
    assert kinds == [
        "FacebookAccount",
        "Queue",
        "Queue",
        "Queue",
        "RoutingRuleSet",
        "RoutingRuleSet",
        "Workstream",
        "Workstream",
    ]
    by_name = {d["spec"].get("displayName", d["metadata"]["name"]): d for d in documents}
    support = by_name["Facebook support"]["spec"]
    assert support["contextVariables"] == {"Segment": "text"}
    default = next(d for d in documents if d["metadata"].get("id") == org.ids["default"])
    assert "priority" not in default["spec"]  # the org's own queue keeps its priority
    assert by_name["Facebook deals"]["spec"]["fallbackQueue"] == default["metadata"]["name"]
    route = next(d for d in documents if d["spec"].get("type") == "route-to-queue")["spec"]
    assert [r["name"] for r in route["rules"]] == [
        "Gold to VIP",
        "Share known customers",
        "Everyone else",
    ]
    assert route["rules"][0]["when"] == {
        "field": "context.Segment",
        "op": "equals",
        "value": "gold",
    }
    assert [a["percent"] for a in route["rules"][1]["routeTo"]] == [60, 40]
    assert "when" not in route["rules"][2]
    classify = next(d for d in documents if d["spec"].get("type") == "classification")["spec"]
    assert classify["rules"][0]["set"] == {"Segment": "gold"}

    # Nothing but the secrets to fill: each variable the export names is one of the org's.
    readme = (out / "README.md").read_text()
    variables = re.findall(r"`([A-Z0-9_]+)`", readme)
    assert len(set(variables) & {v for v in variables if v.isupper()}) >= 3
    values = {
        name: ORG_SECRETS[key]
        for name in set(variables)
        for key, needle in (
            ("app", "APPLICATIONSECRET"),
            ("support", "SUPPORT"),
            ("deals", "DEALS"),
        )
        if needle in name
    }
    assert len(values) == 3, variables
    planned = reconciler(
        "plan", out, "--target", emulator.url, "--detailed-exitcode", env=environ(**values)
    )
    # Made in the admin center, not by this project: every record is adopted by its id, none
    # written (no field differs), until an apply lists them in the project's ledger.
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert re.search(
        r"^Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, \d+ to adopt\.$",
        planned.stdout,
        re.M,
    ), planned.stdout
    assert not re.search(r"^\s+[~+-] ", planned.stdout, re.M), planned.stdout
    applied = reconciler("apply", out, "--target", emulator.url, "--yes", env=environ(**values))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    planned = reconciler(
        "plan", out, "--target", emulator.url, "--detailed-exitcode", env=environ(**values)
    )
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "No changes" in planned.stdout
    unfilled = reconciler("plan", out, "--target", emulator.url, env=environ())
    assert unfilled.returncode == 1
    output = unfilled.stderr.splitlines() + unfilled.stdout.splitlines()
    located = [line for line in output if ": error: " in line]
    assert len(located) == 3, output
    for line, name in zip(sorted(located), sorted(values), strict=True):
        assert line.endswith(f"{name} is not set"), (line, name)


def test_an_operator_no_real_org_holds_fails_validate_at_its_line(tmp_path: Path):
    (tmp_path / "rules.yaml").write_text(
        """apiVersion: reconciler.omnichannel/v1
kind: Queue
metadata: {name: q}
spec: {priority: 1}
---
apiVersion: reconciler.omnichannel/v1
kind: FacebookAccount
metadata: {name: fb}
spec:
  applicationId: "1"
  applicationSecret: {fromEnv: S}
  pages: [{name: P, pageId: "2", accessToken: {fromEnv: T}}]
---
apiVersion: reconciler.omnichannel/v1
kind: Workstream
metadata: {name: ws}
spec:
  channel: facebook
  fallbackQueue: q
  facebook: {account: fb, page: P, language: nl-NL}
---
apiVersion: reconciler.omnichannel/v1
kind: RoutingRuleSet
metadata: {name: rs}
spec:
  workstream: ws
  type: route-to-queue
  rules:
    - name: Dutch
      when: {field: facebook.locale, op: beginsWith, value: nl}
      routeTo: q
"""
    )
    text = (tmp_path / "rules.yaml").read_text().splitlines()
    row = 1 + next(i for i, line in enumerate(text) if "beginsWith" in line)
    column = 1 + text[row - 1].index("op: beginsWith")
    result = reconciler("validate", tmp_path, env=environ())
    assert result.returncode == 1
    (line,) = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert f"rules.yaml:{row}:{column}: error: spec.rules[0].when.op: beginsWith" in line, line
    assert "==" in line or "equals" in line


def test_a_rule_manifests_cannot_say_is_reported_by_name_and_never_rewritten(
    tmp_path: Path, emulator: Served
):
    org = Org(emulator).make()
    out = tmp_path / "exported"
    assert (
        reconciler("export", "--out", out, "--target", emulator.url, env=environ()).returncode == 0
    )
    # Someone adds a skills rule in the admin center (the ALM export's classification rule).
    skills = (
        ROOT
        / "tests/fixtures/realorg/rulesets/alm-chat-work-classification-two-characteristics.xml"
    ).read_text()
    rule = re.search(r"<rule .*</rule>", skills, re.S)
    assert rule is not None
    path = f"msdyn_decisionrulesets({org.ids['classify']})"
    xml = emulator.get(path).json()["msdyn_rulesetdefinition"]
    changed = xml.replace("</rules>", rule.group() + "</rules>")
    assert emulator.patch(path, {"msdyn_rulesetdefinition": changed}).status_code == 204

    values = {
        name: ORG_SECRETS[key]
        for name in re.findall(r"`([A-Z0-9_]+)`", (out / "README.md").read_text())
        for key, needle in (
            ("app", "APPLICATIONSECRET"),
            ("support", "SUPPORT"),
            ("deals", "DEALS"),
        )
        if needle in name
    }
    planned = reconciler(
        "plan", out, "--target", emulator.url, "--detailed-exitcode", env=environ(**values)
    )
    # Nothing to write: adoptions only (the org was made in the admin center).
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert not re.search(r"^\s+[~+-] ", planned.stdout, re.M), planned.stdout
    warning = next(
        line
        for line in planned.stdout.splitlines() + planned.stderr.splitlines()
        if "ALM Chat Work Classification Rule" in line
    )
    assert "attaches skills" in warning
    assert "left as it is" in warning
    applied = reconciler("apply", out, "--target", emulator.url, "--yes", env=environ(**values))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert emulator.get(path).json()["msdyn_rulesetdefinition"] == changed

    again = tmp_path / "again"
    exported = reconciler("export", "--out", again, "--target", emulator.url, env=environ())
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert "rule 'ALM Chat Work Classification Rule': it attaches skills" in exported.stderr
