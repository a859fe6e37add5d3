"""The exporter on plain data: the hand-written org of ``tests/mapping/test_roundtrip.py``
(every kind, every option value), and variations of it the manifests cannot hold.

Each export is written to files and planned again through the real pipeline (``validate``, the
secrets from the variables the export names, the builder): every record left must be ``noop``,
and every record left out must be listed with its reason.
"""

from __future__ import annotations

import base64
import copy
import datetime
import re
import uuid
from pathlib import Path
from typing import Any

import yaml
from mapping import test_roundtrip as org

from reconciler.export import files as f
from reconciler.export.exporter import Export, Skipped, build_export, variable_values
from reconciler.mapping import kinds as k
from reconciler.mapping.desired import desired_records
from reconciler.plan import builder
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
    )


def planned(export: Export, state: Snapshot, folder: Path) -> dict[str, int]:
    """Write the export's files, plan them against ``state``: the count of each action."""
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
    counts: dict[str, int] = {}
    for change in built.changes:
        counts[change.action.value] = counts.get(change.action.value, 0) + 1
    return counts


def exported(rows: Target, folder: Path, namespace: uuid.UUID = org.NS) -> Export:
    state = snapshot(rows)
    export = build_export(state, namespace, TODAY)
    counts = planned(export, state, folder)
    assert set(counts) <= {"noop"}, counts
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
    ]
    assert sorted(names(export, "RoutingRuleSet")) == sorted(org.RULE_SETS_JSON)
    # Made from the namespace: no metadata.id anywhere.
    assert all("id" not in d["metadata"] for d in export.documents)
    assert export.records == 5 + 2 + 1 + 4 + 5 + 3 + 3  # + pages and agents
    text = "".join(export.texts)
    for secret in org.SECRETS:
        assert secret not in text
    assert len(export.holders) == 9


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


def test_a_live_chat_workstream_is_skipped_and_listed(tmp_path):
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
        ("Workstream", "Web chat"): "live chat workstreams are not supported (only Facebook "
        "and Google's Business Messages)"
    }
    assert export.skipped[0].id == org.rid("Workstream/chat")
    readme = f.readme(export, "local", ["queues.yaml"], f.KINDS)
    assert "- Workstream `Web chat` (`" in readme
    assert "live chat workstreams" in readme


def test_rules_of_an_unknown_shape_skip_their_rule_set_only(tmp_path):
    rows = target()
    rows["RoutingRuleSet"]["RoutingRuleSet/gbm-a-routing"]["msdyn_rulesetdefinition"] = (
        "<decision hit-policy='all' version='1'><rules><rule id='x' name='y'><script/></rule>"
        "</rules></decision>"
    )
    export = exported(rows, tmp_path)
    reasons = skipped(export)
    assert list(reasons) == [("RoutingRuleSet", "GBM store A routing")]
    assert reasons[("RoutingRuleSet", "GBM store A routing")].startswith(
        "its rules are in a form the reconciler cannot read ("
    )
    assert "gbm-store-a" in names(export, "Workstream")


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
    rules = org.RULE_SETS_JSON["fb-nl-routing"][3]
    assert "vip-support" in str(rules)  # fb-nl-routing routes to it
    export = exported(rows, tmp_path)
    reasons = skipped(export)
    assert set(reasons) == {
        ("Queue", "VIP Support"),
        ("Workstream", "facebook-en"),
        ("RoutingRuleSet", "Facebook EN classify"),
        ("FacebookPage", "Fabrikam EN"),
        ("RoutingRuleSet", "Facebook NL routing"),
        # Without its route-to-queue set, facebook-nl's other sets still run in their order.
    }
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
    assert export.rounds > 1
    assert "facebook-nl" not in names(export, "Workstream")


def test_system_queues_are_exported_only_when_used_and_only_when_they_can_be(tmp_path):
    rows = target()
    default = add_queue(
        rows, "Default messaging queue", msdyn_isdefaultqueue=True, msdyn_priority=None
    )
    add_queue(rows, "Default voice queue", msdyn_isdefaultqueue=True, msdyn_queuetype=192350002)
    export = exported(rows, tmp_path)
    assert export.skipped == []  # neither is used: neither is written nor listed
    assert not any(n.startswith("default") for n in names(export, "Queue"))

    rows["Workstream"]["Workstream/facebook-en"]["_msdyn_defaultqueue_value"] = default
    export = exported(rows, tmp_path / "used")
    reasons = skipped(export)
    assert reasons[("Queue", "Default messaging queue")].startswith(
        "the manifests cannot hold it: spec: missing required field 'priority'"
    )
    assert reasons[("Workstream", "facebook-en")] == (
        "it needs Queue/default-messaging-queue, which is not exported"
    )

    rows["Queue"]["extra/Default messaging queue"]["msdyn_priority"] = 9
    export = exported(rows, tmp_path / "priority")
    assert export.skipped == []
    assert spec(export, "Workstream", "facebook-en")["fallbackQueue"] == "default-messaging-queue"
    document = next(
        d for d in export.documents if d["metadata"]["name"] == "default-messaging-queue"
    )
    assert document["metadata"]["id"] == default


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
    leaf = {"field": "googleBusinessMessages.placeId", "op": "isNull"}
    xml = org.rulexml.encode(
        [{"name": "Deep", "when": {"not": leaf}, "routeTo": "dutch"}],
        hit_policy="all",
        rule_id=lambda _: "3f0e0000-0000-4000-8000-000000000001",
        queue_id=lambda queue: org.rid(f"Queue/{queue}"),
    )
    opening = '<logical operator="NOT">'
    start, end = xml.index(opening), xml.index("</logical>") + len("</logical>")
    inner = xml[start:end]
    # Deeper than a manifest may nest (60), and deeper than the decoder recurses (800).
    for depth in (60, 800):
        nested = opening * (depth - 1) + inner + "</logical>" * (depth - 1)
        rule_set["msdyn_rulesetdefinition"] = xml[:start] + nested + xml[end:]
        export = exported(rows, tmp_path / str(depth))
        reason = skipped(export)[("RoutingRuleSet", "GBM store A routing")]
        assert "deep" in reason, reason


def test_rules_with_the_hit_policy_of_the_other_type_are_not_taken_as_theirs(tmp_path):
    rows = target()
    rule_set = rows["RoutingRuleSet"]["RoutingRuleSet/gbm-a-routing"]
    rule_set["msdyn_rulesetdefinition"] = rule_set["msdyn_rulesetdefinition"].replace(
        'hit-policy="all"', 'hit-policy="first"'
    )
    export = exported(rows, tmp_path)
    assert skipped(export) == {
        ("RoutingRuleSet", "GBM store A routing"): "its rules are in a form the reconciler "
        "cannot read (hit-policy 'first' in a route-to-queue rule set)"
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
    assert set(planned(export, snapshot(rows), tmp_path)) == {"noop"}


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
