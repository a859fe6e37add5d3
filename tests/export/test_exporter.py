"""The exporter on plain data: the hand-written org of ``tests/mapping/test_roundtrip.py``
(every kind, every option value), and variations of it the manifests cannot hold.

Each export is written to files and planned again through the real pipeline (``validate``, the
secrets from the variables the export names, the builder): every record left must be ``noop``,
or ``adopt`` without field changes when the namespace did not make it (its document carries
``metadata.id``, or it is a child whose id is not derived from its address), and every record
left out must be listed with its reason.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from mapping import test_roundtrip as org

from reconciler import schemagen
from reconciler.export import files as f
from reconciler.export.exporter import Export, Skipped, build_export, variable_values
from reconciler.mapping import kinds as k
from reconciler.mapping.desired import desired_records
from reconciler.mapping.values import record_id
from reconciler.plan import builder
from reconciler.plan.definition import Action
from reconciler.plan.secrets import SecretResolver
from reconciler.state.reader import Snapshot
from reconciler.validate.pipeline import Options, validate

TODAY = datetime.date(2026, 11, 21)
OTHER = uuid.UUID("00000000-0000-4000-8000-0000000000aa")
Target = dict[str, dict[str, dict[str, Any]]]


def target() -> Target:
    return copy.deepcopy(org.TARGET)


def snapshot(rows: Target) -> Snapshot:
    return Snapshot(
        rows={kind: tuple(by_address.values()) for kind, by_address in rows.items()},
        languages=dict(org.LANGUAGES),
        output_contract=org.OUTPUT_CONTRACT,
        organization_id="00000000-0000-4000-8000-00000000beef",
        users=dict(org.USERS),
    )


def planned(export: Export, state: Snapshot, folder: Path) -> dict[str, int]:
    """Write the export's files, plan them against ``state``: the count of each action. No
    record is written: each is ``noop``, or ``adopt`` without field changes. ``state`` has no
    ledger, so the adopted records are exactly those whose ids are not derived from their
    addresses: every record of a document exported with ``metadata.id`` (with its pages,
    contract, context variables, routing and steps), and children the namespace did not make
    found under a parent it did (a page added by hand, an agent renamed in the target)."""
    written = {**f.manifest_files(export), "reconciler.yaml": f"namespace: {export.namespace}\n"}
    for relative, text in written.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text, encoding="utf-8")
    report = validate(Options(paths=[str(folder)], today=TODAY))
    assert report.errors == []
    secrets = SecretResolver(variable_values(export))
    records = desired_records(report.documents, secrets)
    assert secrets.problems == []
    built = builder.build(records, state, builder.Options(export.namespace, False, TODAY))
    assert built.problems == []
    by_id = {
        f"{d['kind']}/{d['metadata']['name']}" for d in export.documents if "id" in d["metadata"]
    }
    counts: dict[str, int] = {}
    for change in built.changes:
        counts[change.action.value] = counts.get(change.action.value, 0) + 1
        assert change.action in (Action.NOOP, Action.ADOPT), change
        assert change.fields == (), change
        made = change.id == record_id(export.namespace, change.address)
        assert (change.action is Action.ADOPT) == (not made), change
        if "/".join(change.address.split("/", 2)[:2]) in by_id:
            assert change.action is Action.ADOPT, change
    return counts


def exported(rows: Target, folder: Path, namespace: uuid.UUID = org.NS) -> Export:
    state = snapshot(rows)
    export = build_export(state, namespace, TODAY)
    counts = planned(export, state, folder)
    assert set(counts) <= {"noop", "adopt"}, counts
    return export


def names(export: Export, kind: str) -> list[str]:
    return [d["metadata"]["name"] for d in export.documents if d["kind"] == kind]


def skipped(export: Export) -> dict[tuple[str, str], str]:
    return {(s.kind, s.name): s.reason for s in export.skipped}


def spec(export: Export, kind: str, name: str) -> dict[str, Any]:
    return next(
        d["spec"] for d in export.documents if (d["kind"], d["metadata"]["name"]) == (kind, name)
    )


# --- the whole org ------------------------------------------------------------------------------


def test_a_member_the_export_cannot_name_skips_its_queue_saying_so(tmp_path):
    rows = target()
    state = snapshot(rows)
    users = {key: value for key, value in org.USERS.items() if key != org.GRACE}
    export = build_export(dataclasses.replace(state, users=users), org.NS, TODAY)
    assert skipped(export)[("Queue", "VIP Support")] == (
        f"a member of it is no user the target holds ({org.GRACE}): no sign-in name names it"
    )


def test_every_record_of_the_org_is_exported_under_the_name_it_was_made_from(tmp_path):
    export = exported(target(), tmp_path)
    assert export.skipped == []
    assert export.rounds == 1
    assert names(export, "Queue") == ["claims", "dutch", "general", "phone", "vip-support"]
    assert names(export, "Workstream") == [
        "facebook-en",
        "facebook-nl",
        "gbm-store-a",
        "gbm-store-b",
        "web-chat",
    ]
    assert sorted(names(export, "RoutingRuleSet")) == sorted(org.RULE_SETS_JSON)
    # Made from the namespace: no metadata.id anywhere.
    assert all("id" not in d["metadata"] for d in export.documents)
    # + pages, agents, widget, domains, capacity profiles and the chat workstream's rows
    assert export.records == 5 + 2 + 1 + 5 + 5 + 3 + 3 + 1 + 2 + 2 + 2
    assert names(export, "CapacityProfile") == ["chat-profile", "vip-profile"]
    assert spec(export, "Workstream", "web-chat")["distribution"]["capacity"] == {
        "profiles": ["chat-profile", "vip-profile"]
    }
    assert spec(export, "CapacityProfile", "vip-profile") == {
        "displayName": "VIP profile",
        "defaultMaxUnits": 1,
        "blockAssignment": True,
        "resetAfter": "1d",
    }
    text = "".join(export.texts)
    for secret in org.SECRETS:
        assert secret not in text
    assert len(export.holders) == 9


def test_every_file_starts_with_a_modeline_naming_its_kinds_schema(tmp_path):
    """As examples/ do; ``exported`` planned the files with it: the plan is unchanged."""
    export = exported(target(), tmp_path)
    manifests = f.manifest_files(export)
    assert manifests["queues.yaml"].startswith(
        "# yaml-language-server: $schema=.schemas/queue.schema.json\n"
    )
    assert manifests["routing/facebook-nl.yaml"].startswith(
        "# yaml-language-server: $schema=../.schemas/routing-rule-set.schema.json\n"
    )
    for path, text in manifests.items():
        (kind,) = {d["kind"] for d in yaml.safe_load_all(text)}
        assert text.splitlines(keepends=True)[0] == f.modeline(path, schemagen.file_name(kind))
    project = f.project_file(export, "local:org.db", "default")
    assert project.startswith("# yaml-language-server: $schema=.schemas/project.schema.json\n")
    # a file of several kinds (none is written today) names the any-kind schema
    assert f._schema_of([{"kind": "Queue"}, {"kind": "Workstream"}]) == "manifest.schema.json"


def test_under_another_namespace_every_record_is_adopted_by_id_and_named_by_display_name(tmp_path):
    export = exported(target(), tmp_path, OTHER)
    assert export.skipped == []
    ids = {d["metadata"]["name"]: d["metadata"]["id"] for d in export.documents}
    assert ids["vip-support"] == org.rid("Queue/vip-support")
    assert ids["2-facebook-nl-triage"] == org.rid("RoutingRuleSet/fb-nl-triage")
    assert names(export, "Workstream") == [
        "facebook-en",
        "facebook-nl",
        "gbm-store-a",
        "gbm-store-b",
        "web-chat",
    ]
    assert names(export, "FacebookAccount") == ["contoso-facebook", "fabrikam"]
    # Rule sets carry their display names' slugs; "facebook-nl-triage" would sort before
    # "fb-nl-flags", which runs first: their names start with their step order instead.
    routing = f.manifest_files(export)["routing/facebook-nl.yaml"]
    order = [d["metadata"]["name"] for d in yaml.safe_load_all(routing)]
    assert order == ["1-fb-nl-flags", "2-facebook-nl-triage", "facebook-nl-routing"]
    assert names(export, "RoutingRuleSet").count("facebook-en-classify") == 1


def test_values_read_back_as_the_target_holds_them(tmp_path):
    export = exported(target(), tmp_path)
    assert spec(export, "FacebookAccount", "fabrikam")["applicationId"] == "0987654321"
    assert spec(export, "Queue", "phone")["description"] == "Calls: 'quoted', \"double\" & <angled>"
    gbm_a = spec(export, "Workstream", "gbm-store-a")
    assert gbm_a["autoCloseAfterInactivity"] == "90m"
    assert gbm_a["allowedPresences"] == list(k.PRESENCES)
    assert spec(export, "Workstream", "gbm-store-b")["autoCloseAfterInactivity"] == "12h"
    assert spec(export, "Workstream", "facebook-nl")["autoCloseAfterInactivity"] == "2d"
    assert spec(export, "Queue", "general") == {
        "priority": 5,
        "assignment": "round-robin",
        "visibility": "private",
    }
    queues = f.manifest_files(export)["queues.yaml"]
    assert "maxSize: 0" in queues  # zero is a value, not a default


# --- names --------------------------------------------------------------------------------------


def add_queue(rows: Target, display: str, **columns: Any) -> str:
    queue_id = str(uuid.uuid5(OTHER, display))
    rows["Queue"][f"extra/{display}"] = {
        "queueid": queue_id,
        "name": display,
        "msdyn_isomnichannelqueue": True,
        "msdyn_queuetype": 192350000,
        "msdyn_priority": 7,
        "msdyn_assignmentstrategy": 192350000,
        "queueviewtype": 0,
        "msdyn_maxqueuesize": None,
        "description": None,
        **columns,
    }
    return queue_id


def test_names_are_slugs_made_unique_and_never_empty(tmp_path):
    rows = target()
    long = "A very long queue name " * 4
    for display in (
        "Support!",
        "support",
        "SUPPORT",
        "客服",
        "客服 2",
        long,
        "Café — Zürich",
        "0123",
    ):
        add_queue(rows, display)
    add_queue(rows, "VIP Support")  # the org's "vip-support" keeps its name: it is proved ours
    export = exported(rows, tmp_path)
    got = {spec(export, "Queue", n).get("displayName", n): n for n in names(export, "Queue")}
    assert got["support"] == "support"
    assert {got["Support!"], got["SUPPORT"]} == {"support-2", "support-3"}
    assert {got["客服"], got["客服 2"]} == {"queue", "2"}
    assert got[long] == "a-very-long-queue-name-a-very-long-queue-name-a-very-long-queue"
    assert got["Café — Zürich"] == "cafe-zurich"
    assert got["0123"] == "0123"
    assert got["VIP Support"] == "vip-support-2"
    queues = f.manifest_files(export)["queues.yaml"]
    assert 'name: "0123"' in queues  # YAML 1.2 would read it as a number


def test_variable_syntax_in_values_is_escaped_and_reads_back_unchanged(tmp_path):
    rows = target()
    add_queue(rows, "Costs ${HOME}", description="${NOT_A_VARIABLE} and $${kept}")
    export = exported(rows, tmp_path)
    assert spec(export, "Queue", "costs-home")["description"] == "${NOT_A_VARIABLE} and $${kept}"
    text = f.manifest_files(export)["queues.yaml"]
    assert "$${NOT_A_VARIABLE} and $$${kept}" in text


# --- what the manifests cannot hold -------------------------------------------------------------


def test_a_live_chat_workstream_without_a_widget_is_skipped_and_listed(tmp_path):
    rows = target()
    _, chat = org.workstream(
        "chat",
        msdyn_name="Web chat",
        msdyn_streamsource=192360000,
        _msdyn_defaultqueue_value=org.rid("Queue/general"),
        msdyn_workdistributionmode=192350000,
    )
    chat["_msdyn_routingcontractid_value"] = None
    rows["Workstream"]["Workstream/chat"] = chat
    export = exported(rows, tmp_path)
    assert skipped(export) == {
        ("Workstream", "Web chat"): "no chat widget serves it (a workstream manifest names the "
        "one that does)"
    }
    assert export.skipped[0].id == org.rid("Workstream/chat")
    readme = f.readme(export, "local", ["queues.yaml"], f.KINDS)
    assert "- Workstream `Web chat` (`" in readme
    assert "no chat widget serves it" in readme


def test_rules_of_an_unknown_shape_skip_their_rule_set_only(tmp_path):
    rows = target()
    rows["RoutingRuleSet"]["RoutingRuleSet/gbm-a-routing"]["msdyn_rulesetdefinition"] = (
        "<decision hit-policy='all' version='1'><rules><rule id='x' name='y'><script/></rule>"
        "</rules></decision>"
    )
    export = exported(rows, tmp_path)
    assert skipped(export) == {
        ("RoutingRuleSet", "GBM store A routing"): "its rules cannot be said in a manifest: "
        "rule 'y': unknown element <script> in <rule>"
    }
    assert "gbm-store-a" in names(export, "Workstream")


def realorg(fixture: str, **replace: str) -> str:
    """A rule set of tests/fixtures/realorg/rulesets/ (its source comment dropped), with the
    ids and names of this org put in for the real org's."""
    path = Path(__file__).parents[1] / "fixtures" / "realorg" / "rulesets" / fixture
    text = path.read_text(encoding="utf-8")
    text = text[text.index("-->") + 3 :].lstrip("\n")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


@pytest.mark.parametrize(
    ("address", "fixture", "reason"),
    [
        (
            "RoutingRuleSet/fb-en-classify",
            "alm-chat-work-classification-two-characteristics.xml",
            "rule 'ALM Chat Work Classification Rule': it attaches skills "
            "(msdyn_ocliveworkitemcharacteristic), which manifests cannot say",
        ),
        (
            "RoutingRuleSet/fb-en-classify",
            "vrt-classification-priorityscore-by-contact.xml",
            "rule 'rule2': it tests 'msdyn_ocliveworkitem.msdyn_customer_msdyn_ocliveworkitem_"
            "...', which manifests cannot name",
        ),
        (
            "RoutingRuleSet/gbm-a-routing",
            "vrt-prequeue-overflow-two-rules.xml",
            "rule 'Rule1': it tests 'queue_prequeue.estimatedwaittimeinminutes', which manifests "
            "cannot name; rule 'Rule2': it tests 'queue_prequeue.currentqueuesize', which "
            "manifests cannot name",
        ),
    ],
)
def test_real_rules_a_manifest_cannot_say_skip_their_rule_set_naming_each_rule(
    tmp_path, address, fixture, reason
):
    """Skills, relationship paths, queue statistics (real orgs' rule sets): the set is
    skipped with the reason of each rule, by name; its workstream is exported."""
    rows = target()
    rule_set = rows["RoutingRuleSet"][address]
    rule_set["msdyn_rulesetdefinition"] = realorg(fixture)
    export = exported(rows, tmp_path)
    assert skipped(export) == {
        ("RoutingRuleSet", rule_set["msdyn_name"]): f"its rules cannot be said in a manifest: "
        f"{reason}"
    }
    assert org.RULE_SETS_JSON[address.split("/")[1]][0] in names(export, "Workstream")


def test_rules_as_a_real_org_writes_them_are_exported_and_plan_to_no_change(tmp_path):
    """VRT's PERCENTAGE_DISTRIBUTION capture (indented, a doubly nested AND, queue ids in braces,
    one upper-case) with this org's queues and context variable: read as our rules."""
    rows = target()
    dutch, general = org.rid("Queue/dutch"), org.rid("Queue/general")
    xml = realorg(
        "vrt-rtq-percentage-split-context-variable.xml",
        **{
            "PreferredLanguage": "Language",
            "c8b65393-839f-f111-aaad-70a8a5b10059": dutch.upper(),
            "e11e9f11-2bad-f111-aaac-70a8a5b10059": general,
        },
    )
    rows["RoutingRuleSet"]["RoutingRuleSet/fb-nl-routing"]["msdyn_rulesetdefinition"] = xml
    export = exported(rows, tmp_path)
    assert export.skipped == []
    assert spec(export, "RoutingRuleSet", "fb-nl-routing")["rules"] == [
        {
            "name": "Route to Default Contoso Queue",
            "when": {"field": "context.Language", "op": "equals", "value": "NL"},
            "routeTo": [{"queue": "dutch", "percent": 80}, {"queue": "general", "percent": 20}],
        }
    ]


def test_a_rule_set_of_another_type_than_declarative_is_skipped(tmp_path):
    rows = target()
    rows["RoutingRuleSet"]["RoutingRuleSet/gbm-a-routing"]["msdyn_rulesettype"] = 192350001
    export = exported(rows, tmp_path)
    assert skipped(export) == {
        ("RoutingRuleSet", "GBM store A routing"): "it is a rule set of ML model based; "
        "manifests describe declarative route-to-queue and classification sets"
    }


def test_context_variables_are_read_from_their_rows_and_must_match_the_contract(tmp_path):
    rows = target()
    export = exported(rows, tmp_path / "as-is")
    assert spec(export, "Workstream", "facebook-en")["contextVariables"] == {
        "Region": "text",
        "Score": "text",
    }
    assert "contextVariables" not in spec(export, "Workstream", "gbm-store-a")
    # A number variable: no real contract shows how one is declared, so validate refuses it.
    number = target()
    number["ContextVariable"]["Workstream/facebook-en/context.Score"]["msdyn_datatype"] = 192350001
    reasons = skipped(exported(number, tmp_path / "number"))
    assert reasons[("Workstream", "facebook-en")] == (
        "the manifests cannot hold it: spec.contextVariables.Score: number context variables "
        "cannot be written: no real org was seen to hold how a contract declares one "
        "(docs/routing-xml.md); use text"
    )
    assert reasons[("RoutingRuleSet", "Facebook EN classify")] == (
        "it needs Workstream/facebook-en, which is not exported"
    )
    # The contract declares a variable no row does: the plan would rewrite the contract.
    other = target()
    contract = other["DecisionContract"]["Workstream/gbm-store-b/contract"]
    contract["msdyn_contractdefinition"] = contract["msdyn_contractdefinition"].replace(
        'name="StoreCode"', 'name="Other"'
    )
    reasons = skipped(exported(other, tmp_path / "other"))
    assert reasons[("Workstream", "GBM Store B")] == (
        "the manifests cannot hold it as the target does: a plan would update "
        "Workstream/gbm-store-b/contract (contextVariables)"
    )


def test_a_contract_whose_xml_cannot_be_read_skips_its_workstream_with_the_reason(tmp_path):
    rows = target()
    contract = rows["DecisionContract"]["Workstream/gbm-store-b/contract"]
    contract["msdyn_contractdefinition"] = "<contract"
    reasons = skipped(exported(rows, tmp_path))
    reason = reasons[("Workstream", "GBM Store B")]
    assert reason.startswith(
        "the manifests cannot hold it as the target does: Workstream/gbm-store-b/contract: its "
        "channel in the target cannot be said in a manifest (malformed XML: "
    )
    assert reason.endswith(
        "left as it is, not rewritten from the manifests. Change it in the "
        "admin center, or delete the record to write it anew"
    )


def test_an_option_the_manifests_do_not_know_skips_the_record(tmp_path):
    rows = target()
    rows["Queue"]["Queue/claims"]["msdyn_assignmentstrategy"] = 192350002  # custom
    export = exported(rows, tmp_path)
    reason = skipped(export)[("Queue", "Claims")]
    assert reason.startswith("the manifests cannot hold it: spec.assignment")


def test_what_needs_a_skipped_record_is_skipped_too(tmp_path):
    rows = target()
    # facebook-en falls back to a custom-assignment queue: the queue goes, and with it the
    # workstream, its rule set and the page serving it (the account stays, without the page).
    rows["Queue"]["Queue/vip-support"]["msdyn_assignmentstrategy"] = 192350002
    rows["Workstream"]["Workstream/facebook-nl"]["_msdyn_defaultqueue_value"] = org.rid(
        "Queue/general"
    )
    for rule_set in ("fb-nl-routing", "gbm-a-routing"):  # both route some work to it
        assert "vip-support" in str(org.RULE_SETS_JSON[rule_set][3])
    export = exported(rows, tmp_path)
    reasons = skipped(export)
    assert set(reasons) == {
        ("Queue", "VIP Support"),
        ("Workstream", "facebook-en"),
        ("RoutingRuleSet", "Facebook EN classify"),
        ("FacebookPage", "Fabrikam EN"),
        ("RoutingRuleSet", "Facebook NL routing"),
        ("RoutingRuleSet", "GBM store A routing"),
        # Without its route-to-queue set, facebook-nl's other sets still run in their order.
    }
    assert reasons[("RoutingRuleSet", "GBM store A routing")] == (
        "it needs Queue/vip-support, which is not exported"
    )
    assert (
        reasons[("Workstream", "facebook-en")]
        == "it needs Queue/vip-support, which is not exported"
    )
    assert reasons[("FacebookPage", "Fabrikam EN")] == (
        "it needs Workstream/facebook-en, which is not exported"
    )
    assert spec(export, "FacebookAccount", "fabrikam")["pages"] == []


def test_a_page_that_cannot_be_written_is_left_out_of_its_account(tmp_path):
    rows = target()
    rows["FacebookPage"][org.PAGE_SPARE]["msdyn_fbpageid"] = "not digits"
    export = exported(rows, tmp_path)
    reason = skipped(export)[("FacebookPage", "Contoso Spare")]
    assert reason.startswith("the manifests cannot hold it: spec.pages[1].pageId")
    pages = spec(export, "FacebookAccount", "contoso-facebook")["pages"]
    assert [page["name"] for page in pages] == ["Contoso NL"]


def test_a_secret_the_environment_cannot_give_back_skips_its_record(tmp_path):
    rows = target()
    rows["FacebookPage"][org.PAGE_SPARE]["msdyn_fbpageaccesstoken"] = org.PAGE_SPARE_TOKEN + "\n"
    gbm = rows["GoogleBusinessMessagesAccount"][org.GBM]
    gbm["msdyn_base64credentialfilestring"] = base64.b64encode(b"\xff\xfe binary").decode()
    gbm["msdyn_base64credentialfilestringcontd"] = None
    export = exported(rows, tmp_path)
    reasons = skipped(export)
    # A trailing newline is dropped when a secret is read: the plan would update the token.
    assert reasons[("FacebookPage", "Contoso Spare")] == (
        "the manifests cannot hold it as the target does: a plan would update "
        "FacebookAccount/contoso-facebook/Contoso Spare (accessToken)"
    )
    assert reasons[("GoogleBusinessMessagesAccount", "Contoso GBM")].startswith(
        "its service account key is not a base64-encoded UTF-8 file"
    )
    assert ("Workstream", "GBM Store A") in reasons  # served by an agent of the account
    for reason in reasons.values():
        assert org.PAGE_SPARE_TOKEN not in reason


def test_pages_sharing_a_name_or_a_workstream_are_skipped_after_the_first(tmp_path):
    rows = target()
    twin = dict(rows["FacebookPage"][org.PAGE_SPARE])
    twin.update(
        # Its id sorts first, but the page serving a workstream is the one kept.
        msdyn_ocfbpageid="00000000-0000-4000-8000-000000000001",
        msdyn_fbpagename="Contoso NL",
        msdyn_fbpageid="999",
    )
    rows["FacebookPage"]["twin"] = twin
    rows["FacebookPage"][org.PAGE_SPARE]["_msdyn_liveworkstreamid_value"] = org.rid(
        "Workstream/facebook-nl"
    )
    rows["FacebookPage"][org.PAGE_SPARE]["_msdyn_ocwidgetlanguage_value"] = org.LANG_NL
    export = exported(rows, tmp_path)
    reasons = skipped(export)
    assert reasons[("FacebookPage", "Contoso NL")] == (
        "another page of FacebookAccount/contoso-facebook has the name 'Contoso NL' "
        "(names are unique within an account)"
    )
    assert reasons[("FacebookPage", "Contoso Spare")] == (
        "Workstream/facebook-nl is already served by FacebookAccount/contoso-facebook/Contoso "
        "NL; a workstream has one channel instance"
    )
    assert len(reasons) == 2


def test_a_workstream_no_channel_instance_serves_is_skipped(tmp_path):
    rows = target()
    rows["FacebookPage"][org.PAGE_EN]["_msdyn_liveworkstreamid_value"] = None
    export = exported(rows, tmp_path)
    assert skipped(export) == {
        ("Workstream", "facebook-en"): "no page serves it (a workstream manifest names the one "
        "that does)",
        # An unlinked page keeps no channel settings in a manifest: its language would go.
        ("FacebookPage", "Fabrikam EN"): "the manifests cannot hold it as the target does: a "
        "plan would update FacebookAccount/fabrikam/Fabrikam EN (facebook.language)",
        ("RoutingRuleSet", "Facebook EN classify"): "it needs Workstream/facebook-en, which is "
        "not exported",
    }


def test_a_routing_order_the_manifests_cannot_express_is_skipped_by_the_proof(tmp_path):
    rows = target()
    steps = rows["RoutingStep"]
    steps["RoutingRuleSet/fb-nl-flags/step"]["msdyn_steporder"] = 2
    steps["RoutingRuleSet/fb-nl-triage/step"]["msdyn_steporder"] = 1
    export = exported(rows, tmp_path)
    reasons = skipped(export)
    assert reasons[("RoutingRuleSet", "fb-nl-flags")] == (
        "the manifests cannot hold it as the target does: a plan would update "
        "RoutingRuleSet/fb-nl-flags/step (order)"
    )
    assert reasons[("RoutingRuleSet", "Facebook NL triage")] == (
        "the manifests cannot hold it as the target does: a plan would update "
        "RoutingRuleSet/fb-nl-triage/step (order)"
    )
    # Then the route-to-queue set would run first: it goes in the next round.
    assert reasons[("RoutingRuleSet", "Facebook NL routing")] == (
        "the manifests cannot hold it as the target does: a plan would update "
        "RoutingRuleSet/fb-nl-routing/step (order)"
    )
    assert export.rounds > 1
    # The workstream stays, with the context variables its rows declare: they do not depend
    # on its rule sets.
    assert spec(export, "Workstream", "facebook-nl")["contextVariables"] == {
        "Known": "text",
        "Language": "text",
        "Tier": "text",
    }


def test_system_queues_are_exported_only_when_used_and_only_when_they_can_be(tmp_path):
    rows = target()
    default = add_queue(
        rows, "Default messaging queue", msdyn_isdefaultqueue=True, msdyn_priority=None
    )
    add_queue(rows, "Default voice queue", msdyn_isdefaultqueue=True, msdyn_queuetype=192350002)
    export = exported(rows, tmp_path)
    assert export.skipped == []  # neither is used: neither is written nor listed
    assert not any(n.startswith("default") for n in names(export, "Queue"))

    # Used, the default queue is exported though it has no priority: a manifest without one
    # neither writes nor compares it.
    rows["Workstream"]["Workstream/facebook-en"]["_msdyn_defaultqueue_value"] = default
    export = exported(rows, tmp_path / "used")
    assert export.skipped == []
    assert spec(export, "Workstream", "facebook-en")["fallbackQueue"] == "default-messaging-queue"
    document = next(
        d for d in export.documents if d["metadata"]["name"] == "default-messaging-queue"
    )
    assert document["metadata"]["id"] == default
    assert "priority" not in document["spec"]
    assert not any(n.startswith("default-voice") for n in names(export, "Queue"))

    rows["Queue"]["extra/Default messaging queue"]["msdyn_priority"] = 9
    export = exported(rows, tmp_path / "priority")
    assert export.skipped == []
    assert spec(export, "Queue", "default-messaging-queue")["priority"] == 9


def test_skipped_records_show_no_values():
    item = Skipped("Queue", "Claims", "1234", "reason")
    assert str(item) == "Queue 'Claims' (1234): reason"


# --- found in review ----------------------------------------------------------------------------


def test_only_what_substitution_would_replace_is_escaped(tmp_path):
    rows = target()
    texts = ["cost ${ unclosed", "cost ${ ${x}", "${A} and $${B}", "$${", "a $ {b}", "${}"]
    for index, text in enumerate(texts):
        add_queue(rows, f"Odd {index}", description=text)
    export = exported(rows, tmp_path)
    assert export.skipped == []
    for index, text in enumerate(texts):
        assert spec(export, "Queue", f"odd-{index}")["description"] == text


def test_a_page_named_with_variable_syntax_is_skipped_alone(tmp_path):
    rows = target()
    page = rows["FacebookPage"][org.PAGE_SPARE]
    page.update(msdyn_fbpagename="Shop ${X}", msdyn_fbpageid="not digits")
    export = exported(rows, tmp_path)
    assert list(skipped(export)) == [("FacebookPage", "Shop ${X}")]


def test_ten_classification_sets_keep_their_order_in_their_names(tmp_path):
    rows = target()
    workstream = "Workstream/facebook-en"
    for order in range(2, 11):  # facebook-en runs fb-en-classify first; nine more after it
        address = f"RoutingRuleSet/extra-{order}"
        rule_set = dict(rows["RoutingRuleSet"]["RoutingRuleSet/fb-en-classify"])
        rule_set.update(
            msdyn_decisionrulesetid=org.rid(address),
            msdyn_name=f"{chr(ord('z') - order)} set",  # display names sort backwards
            msdyn_uniquename=org.unique(address),
        )
        rows["RoutingRuleSet"][address] = rule_set
        step = dict(rows["RoutingStep"]["RoutingRuleSet/fb-en-classify/step"])
        step.update(
            msdyn_routingconfigurationstepid=org.rid(f"{address}/step"),
            _msdyn_rulesetid_value=org.rid(address),
            msdyn_steporder=order,
        )
        rows["RoutingStep"][f"{address}/step"] = step
    export = exported(rows, tmp_path, OTHER)
    assert export.skipped == []
    routing = f.manifest_files(export)["routing/facebook-en.yaml"]
    order = [d["metadata"]["name"] for d in yaml.safe_load_all(routing)]
    assert order[0] == "01-facebook-en-classify"
    assert order[-1] == "10-p-set"
    assert workstream.split("/")[1] in names(export, "Workstream")


def test_rule_sets_of_an_inactive_routing_configuration_are_skipped_alone(tmp_path):
    rows = target()
    old = "Workstream/facebook-nl/old-routing"
    rows["RoutingConfiguration"][old] = {
        **rows["RoutingConfiguration"]["Workstream/facebook-nl/routing"],
        "msdyn_routingconfigurationid": org.rid(old),
        "msdyn_isactiveconfiguration": False,
    }
    address = "RoutingRuleSet/old-routing"
    rows["RoutingRuleSet"][address] = {
        **rows["RoutingRuleSet"]["RoutingRuleSet/fb-nl-routing"],
        "msdyn_decisionrulesetid": org.rid(address),
        "msdyn_name": "Old routing",
    }
    rows["RoutingStep"][f"{address}/step"] = {
        **rows["RoutingStep"]["RoutingRuleSet/fb-nl-routing/step"],
        "msdyn_routingconfigurationstepid": org.rid(f"{address}/step"),
        "_msdyn_routingconfigurationid_value": org.rid(old),
        "_msdyn_rulesetid_value": org.rid(address),
    }
    export = exported(rows, tmp_path)
    assert skipped(export) == {
        ("RoutingRuleSet", "Old routing"): "it runs in a routing configuration of "
        "Workstream/facebook-nl that is not the active one"
    }
    assert "fb-nl-routing" in names(export, "RoutingRuleSet")


def test_a_skipped_record_the_namespace_made_is_flagged_for_prune(tmp_path):
    rows = target()
    rows["Queue"]["Queue/claims"]["msdyn_assignmentstrategy"] = 192350002
    export = exported(rows, tmp_path)
    (item,) = export.skipped
    assert item.owned
    readme = f.readme(export, "local", [], f.KINDS)
    assert "`plan --prune` would delete it" in readme
    assert not exported(rows, tmp_path / "other", OTHER).skipped[0].owned


def test_look_alike_secret_names_all_get_a_suffix_of_their_own(tmp_path):
    rows = target()
    agent = rows["GoogleBusinessMessagesAgent"][org.AGENT_C]
    agent["msdyn_name"] = "Store-A"  # reads like "Store A"
    export = exported(rows, tmp_path)
    agents = [n for n in export.holders if "_STORE_A_" in n]
    assert len(agents) == 2
    assert all(re.fullmatch(r".*_STORE_A_CLIENTTOKEN_[0-9A-F]{8}", n) for n in agents)
    assert "GOOGLEBUSINESSMESSAGESACCOUNT_CONTOSO_GBM_STORE_A_CLIENTTOKEN" not in export.holders


def test_conditions_nesting_too_deep_skip_their_rule_set(tmp_path):
    rows = target()
    rule_set = rows["RoutingRuleSet"]["RoutingRuleSet/gbm-a-routing"]
    leaf = {"field": "googleBusinessMessages.placeId", "op": "isNotNull"}
    xml = org.rulexml.encode(
        [{"name": "Deep", "when": leaf, "routeTo": "dutch"}],
        hit_policy="all",
        rule_id=lambda _: "3f0e0000-0000-4000-8000-000000000001",
        queue_id=lambda queue: org.rid(f"Queue/{queue}"),
    )
    condition = xml[xml.index("<condition") : xml.index("</condition>") + len("</condition>")]

    def nested(depth: int, siblings: bool) -> str:
        """``depth`` groups, OR and AND in turn, each holding the condition (``siblings``)
        and the next group."""
        inner = condition
        for level in range(depth):
            operator = "OR" if level % 2 == 0 else "AND"
            inner = (
                f'<logical operator="{operator}">{condition if siblings else ""}{inner}</logical>'
            )
        return xml.replace(condition, inner)

    # Deeper than a manifest may nest, and deeper than the decoder recurses (800).
    for depth in (60, 800):
        rule_set["msdyn_rulesetdefinition"] = nested(depth, siblings=True)
        export = exported(rows, tmp_path / str(depth))
        reason = skipped(export)[("RoutingRuleSet", "GBM store A routing")]
        assert "deep" in reason, reason
    # Groups of one condition are that condition, however deep they nest.
    rule_set["msdyn_rulesetdefinition"] = nested(60, siblings=False)
    export = exported(rows, tmp_path / "single")
    assert export.skipped == []
    assert spec(export, "RoutingRuleSet", "gbm-a-routing")["rules"] == [
        {"name": "Deep", "when": leaf, "routeTo": "dutch"}
    ]


def test_rules_with_the_hit_policy_of_the_other_type_are_not_taken_as_theirs(tmp_path):
    rows = target()
    rule_set = rows["RoutingRuleSet"]["RoutingRuleSet/gbm-a-routing"]
    rule_set["msdyn_rulesetdefinition"] = rule_set["msdyn_rulesetdefinition"].replace(
        'hit-policy="all"', 'hit-policy="first"'
    )
    export = exported(rows, tmp_path)
    assert skipped(export) == {
        ("RoutingRuleSet", "GBM store A routing"): "its rules cannot be said in a manifest: "
        "hit-policy 'first' in a route-to-queue rule set"
    }


def test_an_earlier_exports_names_are_kept(tmp_path):
    rows = target()
    previous = {("Queue", org.rid("Queue/vip-support")): "premium", ("Queue", "gone"): "x"}
    state = snapshot(rows)
    export = build_export(state, OTHER, TODAY, previous)
    assert "premium" in names(export, "Queue")
    add_queue(rows, "Premium")  # a newcomer whose slug is taken gets the suffix
    export = build_export(snapshot(rows), OTHER, TODAY, previous)
    assert {"premium", "premium-2"} <= set(names(export, "Queue"))
    # Under another namespace every record is adopted by its id, none is written.
    assert set(planned(export, snapshot(rows), tmp_path)) == {"adopt"}


def test_page_names_differing_in_case_are_two_pages(tmp_path):
    rows = target()
    twin = dict(rows["FacebookPage"][org.PAGE_SPARE])
    twin.update(
        msdyn_ocfbpageid=org.rid("twin"), msdyn_fbpagename="contoso spare", msdyn_fbpageid="7"
    )
    rows["FacebookPage"]["twin"] = twin
    export = exported(rows, tmp_path)
    assert export.skipped == []
    pages = spec(export, "FacebookAccount", "contoso-facebook")["pages"]
    assert [p["name"] for p in pages] == ["Contoso NL", "Contoso Spare", "contoso spare"]
