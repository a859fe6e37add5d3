"""The plan builder: desired records + the target's rows → changes (docs/spec.md §2, §5).

Desired state is built from manifest dicts, the target from rows in Dataverse read form
(``conftest.Scenario``): no HTTP, no emulator. Each test starts from "a perfect apply of the
manifests" (or an empty target) and changes one thing.
"""

from __future__ import annotations

import datetime
import json
import random

import pytest

from reconciler.mapping import kinds as k
from reconciler.mapping.values import fingerprint, json_value
from reconciler.plan import builder, ownership
from reconciler.plan.builder import Built
from reconciler.plan.definition import (
    Action,
    Change,
    FieldChange,
    Plan,
    PlanTarget,
    Summary,
    compute_checksum,
    summarise,
)
from reconciler.render.plan_text import render_text
from reconciler.state.ledger import Entry, Ledger, Page
from reconciler.state.ledger import page_id as ledger_page_id

FOREIGN = "f0000000-0000-0000-0000-0000000000"  # + two hex digits: ids nobody derived
PAGE_SUPPORT = "FacebookAccount/contoso-facebook/Contoso Support"
PAGE_DEALS = "FacebookAccount/contoso-facebook/Contoso Deals"
ROUTING = "RoutingRuleSet/facebook-support-routing"
CLASSIFICATION = "RoutingRuleSet/facebook-support-classification"


# --- helpers ----------------------------------------------------------------------------------


def by_address(built: Built) -> dict[str, Change]:
    return {change.address: change for change in built.changes}


def actions(built: Built) -> dict[str, Action]:
    return {change.address: change.action for change in built.changes}


def changing(built: Built) -> dict[str, Change]:
    return {c.address: c for c in built.changes if c.action is not Action.NOOP}


def diff(change: Change) -> list[tuple[str, object, object]]:
    return [(f.path, f.before, f.after) for f in change.fields]


def plan_of(built: Built) -> Plan:
    changes = tuple(built.changes)
    return Plan(
        tool_version="0.0.0-test",
        created_at="2024-06-01T12:00:00Z",
        target=PlanTarget(url="local:.reconciler/test.db", organization_id="org"),
        summary=summarise(changes),
        changes=changes,
        warnings=tuple(built.warnings),
        follow_up=tuple(built.follow_up),
        unmanaged=dict(built.unmanaged),
    ).with_checksum()


def foreign(n: int) -> str:
    return f"{FOREIGN}{n:02x}"


def manifest(kind: str, name: str, **spec: object) -> dict:
    return {
        "apiVersion": "reconciler.omnichannel/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }


def desired_of(scenario, address: str) -> dict:
    """What apply writes for ``address``: its fields as JSON, secrets as null."""
    record = next(r for r in scenario.records() if r.address == address)
    return {path: json_value(value) for path, value in record.fields.items()}


# --- an empty target: everything is created ---------------------------------------------------


def test_empty_target_creates_every_record_in_dependency_order(gbm_scenario):
    built = gbm_scenario.build({})

    assert {c.action for c in built.changes} == {Action.CREATE}
    assert {c.reason for c in built.changes} == {"not in the target"}
    assert [c.address for c in built.changes] == [
        "Queue/dutch-support",
        "Queue/general-support",
        "Queue/overflow-support",
        "Queue/vip-support",
        "FacebookAccount/contoso-facebook",
        "GoogleBusinessMessagesAccount/contoso-gbm",
        "Workstream/facebook-support/contract",
        "Workstream/gbm-stores/contract",
        "Workstream/facebook-support",
        "Workstream/gbm-stores",
        CLASSIFICATION,
        ROUTING,
        "Workstream/facebook-support/routing",
        "Workstream/gbm-stores/routing",
        f"{CLASSIFICATION}/step",
        f"{ROUTING}/step",
        PAGE_DEALS,
        PAGE_SUPPORT,
        "GoogleBusinessMessagesAccount/contoso-gbm/Contoso Stores",
    ]
    stages = [k.STAGE[c.kind] for c in built.changes]
    assert stages == sorted(stages)
    assert plan_of(built).summary == Summary(create=19)
    assert all(c.id == gbm_scenario.id(c.address) and c.etag is None for c in built.changes)
    assert built.warnings == []
    assert built.problems == []
    assert built.unmanaged == {}


@pytest.mark.parametrize(
    ("address", "depends_on"),
    [
        ("Queue/vip-support", ()),
        ("FacebookAccount/contoso-facebook", ()),
        ("Workstream/facebook-support/contract", ()),  # made before the workstream using it
        (
            "Workstream/facebook-support",
            ("Queue/general-support", "Workstream/facebook-support/contract"),
        ),
        (
            ROUTING,
            (
                "Queue/dutch-support",
                "Queue/general-support",
                "Queue/overflow-support",
                "Queue/vip-support",
                "Workstream/facebook-support/contract",
            ),
        ),
        (CLASSIFICATION, ("Workstream/facebook-support/contract",)),
        ("Workstream/facebook-support/routing", ("Workstream/facebook-support",)),
        (f"{ROUTING}/step", (ROUTING, "Workstream/facebook-support/routing")),
        (PAGE_SUPPORT, ("FacebookAccount/contoso-facebook", "Workstream/facebook-support")),
        (PAGE_DEALS, ("FacebookAccount/contoso-facebook",)),
        (
            "GoogleBusinessMessagesAccount/contoso-gbm/Contoso Stores",
            ("GoogleBusinessMessagesAccount/contoso-gbm", "Workstream/gbm-stores"),
        ),
    ],
)
def test_creates_depend_on_the_records_they_point_at(gbm_scenario, address, depends_on):
    assert by_address(gbm_scenario.build({}))[address].depends_on == depends_on


def test_every_dependency_is_an_earlier_change(gbm_scenario):
    """No cycles: a contract belongs to its workstream but is made before it."""
    seen: set[str] = set()
    for change in gbm_scenario.build({}).changes:
        assert set(change.depends_on) <= seen, (change.address, change.depends_on)
        seen.add(change.address)


def test_create_shows_every_set_field_and_what_apply_writes(scenario):
    changes = by_address(scenario.build({}))

    queue = changes["Queue/vip-support"]
    assert diff(queue) == [
        ("displayName", None, "VIP support"),
        ("type", None, "messaging"),
        ("priority", None, 1),
        ("assignment", None, "round-robin"),
        ("visibility", None, "private"),
        ("maxSize", None, 50),
    ]
    assert queue.desired == {
        "displayName": "VIP support",
        "type": "messaging",
        "priority": 1,
        "assignment": "round-robin",
        "visibility": "private",
        "maxSize": 50,
        "description": None,
    }
    # Rules read one field per rule, by name; the contract shows its channel and variables.
    assert diff(changes[CLASSIFICATION])[-1:] == [
        (
            "rules[Dutch locale]",
            None,
            {
                "name": "Dutch locale",
                "when": {"field": "facebook.locale", "op": "equals", "value": "nl_NL"},
                "set": {"language": "Dutch"},
            },
        ),
    ]
    assert diff(changes["Workstream/facebook-support/contract"]) == [
        ("channel", None, "facebook"),
        ("contextVariables", None, {}),
    ]


def test_create_of_a_contract_with_context_variables_shows_them(gbm_scenario):
    spec = gbm_scenario.spec("Workstream", "gbm-stores")
    spec["contextVariables"] = {"StoreCode": "text"}
    changes = by_address(gbm_scenario.build({}))
    assert diff(changes["Workstream/gbm-stores/contract"]) == [
        ("channel", None, "google-business-messages"),
        ("contextVariables", None, {"StoreCode": "text"}),
    ]
    variable = changes["Workstream/gbm-stores/context.StoreCode"]
    assert variable.action is Action.CREATE
    assert diff(variable) == [
        ("workstream", None, "gbm-stores"),
        ("name", None, "StoreCode"),
        ("type", None, "text"),
    ]
    assert variable.depends_on == ("Workstream/gbm-stores",)


def test_create_hides_secrets_behind_a_fingerprint(scenario):
    page = by_address(scenario.build({}))[PAGE_SUPPORT]
    token = next(f for f in page.fields if f.path == "accessToken")

    assert token == FieldChange(
        path="accessToken",
        sensitive=True,
        fingerprint=fingerprint(scenario.env["FB_TOKEN_SUPPORT"]),
        source="env:FB_TOKEN_SUPPORT",
    )
    assert page.desired is not None
    assert page.desired["accessToken"] is None


def test_follow_up_for_each_new_facebook_page_and_gbm_account(gbm_scenario):
    follow_up = gbm_scenario.build({}).follow_up

    assert [(f.address, f.output) for f in follow_up] == [
        ("GoogleBusinessMessagesAccount/contoso-gbm", "webhookUrl"),
        (PAGE_DEALS, "callbackUrl, verifyToken"),
        (PAGE_SUPPORT, "callbackUrl, verifyToken"),
    ]
    assert "Facebook app" in follow_up[1].message


# --- a target that matches: nothing to do -----------------------------------------------------


def test_perfect_target_is_all_noop(scenario):
    built = scenario.build(scenario.rows())
    plan = plan_of(built)

    assert {c.action for c in built.changes} == {Action.NOOP}
    assert {c.reason for c in built.changes} == {"matches the manifests"}
    assert all(c.etag == 'W/"1"' and c.fields == () and c.desired is None for c in built.changes)
    assert plan.summary == Summary(noop=14)
    assert not plan.has_changes
    assert not plan.has_conflicts
    assert built.warnings == []
    assert built.follow_up == []
    assert built.problems == []
    assert built.unmanaged == {}  # the default queue and the output contract are the org's


# --- updates ----------------------------------------------------------------------------------


def _queue_priority(s):
    s.spec("Queue", "vip-support")["priority"] = 7


def _page_agent_attachments(s):
    s.spec("Workstream", "facebook-support")["facebook"]["fileAttachments"]["agent"] = True


def _workstream_settings(s):
    spec = s.spec("Workstream", "facebook-support")
    spec["distribution"]["maxConcurrency"] = 5
    spec["autoCloseAfterInactivity"] = "12h"
    spec["allowedPresences"] = ["available", "busy", "away"]


def _route_to(s):
    s.spec("RoutingRuleSet", "facebook-support-routing")["rules"][2]["routeTo"] = "vip-support"


def _rule_added(s, queue="dutch-support"):
    s.spec("RoutingRuleSet", "facebook-support-routing")["rules"].append(
        {
            "name": "Night",
            "when": {"not": {"field": "facebook.locale", "op": "isNull"}},
            "routeTo": queue,
        }
    )


def _rule_removed(s):
    del s.spec("RoutingRuleSet", "facebook-support-routing")["rules"][2]


def _condition(s):
    rule = s.spec("RoutingRuleSet", "facebook-support-routing")["rules"][0]
    rule["when"] = {"field": "facebook.customerName", "op": "equals", "value": "Piet"}


@pytest.mark.parametrize(
    ("change", "address", "fields"),
    [
        pytest.param(_queue_priority, "Queue/vip-support", [("priority", 1, 7)], id="priority"),
        pytest.param(
            _page_agent_attachments,
            PAGE_SUPPORT,
            [("facebook.fileAttachments.agent", False, True)],
            id="page-settings-from-the-workstream",
        ),
        pytest.param(
            _workstream_settings,
            "Workstream/facebook-support",
            [
                ("distribution.maxConcurrency", 3, 5),
                ("autoCloseAfterInactivity", "2d", "12h"),
                ("allowedPresences", ["available", "busy"], ["available", "busy", "away"]),
            ],
            id="workstream",
        ),
        pytest.param(
            _route_to,
            ROUTING,
            [
                (
                    "rules[Spread the rest].routeTo",
                    [
                        {"queue": "general-support", "percent": 70},
                        {"queue": "overflow-support", "percent": 30},
                    ],
                    "vip-support",
                )
            ],
            id="rule-route",
        ),
        pytest.param(
            _rule_added,
            ROUTING,
            [
                (
                    "rules[Night]",
                    None,
                    {
                        "name": "Night",
                        # compared as written: not isNull is isNotNull
                        "when": {"field": "facebook.locale", "op": "isNotNull"},
                        "routeTo": "dutch-support",
                    },
                )
            ],
            id="rule-added",
        ),
        pytest.param(
            _rule_removed,
            ROUTING,
            [
                (
                    "rules[Spread the rest]",
                    {
                        "name": "Spread the rest",
                        "when": {"field": "facebook.userPageScopedId", "op": "isNotNull"},
                        "routeTo": [
                            {"queue": "general-support", "percent": 70},
                            {"queue": "overflow-support", "percent": 30},
                        ],
                    },
                    None,
                )
            ],
            id="rule-removed",
        ),
        pytest.param(
            _condition,
            ROUTING,
            [
                (
                    "rules[Known VIP customer].when",
                    {"field": "facebook.customerName", "op": "equals", "value": "Jan de Vries"},
                    {"field": "facebook.customerName", "op": "equals", "value": "Piet"},
                )
            ],
            id="rule-condition",
        ),
    ],
)
def test_a_changed_field_is_an_update(scenario, change, address, fields):
    rows = scenario.rows()
    change(scenario)
    built = scenario.build(rows)

    assert list(changing(built)) == [address]
    update = by_address(built)[address]
    assert update.action is Action.UPDATE
    assert diff(update) == fields
    assert update.reason.startswith(f"{len(fields)} field")
    assert "differ" in update.reason
    assert update.etag == 'W/"1"'
    assert update.id == scenario.id(address)
    assert update.desired == desired_of(scenario, address)
    assert update.depends_on == ()


def test_an_update_depends_on_the_changing_records_it_points_at(scenario):
    rows = scenario.rows()
    scenario.manifests.append(manifest("Queue", "vip", priority=2))
    _rule_added(scenario, queue="vip")
    changes = changing(scenario.build(rows))

    assert list(changes) == ["Queue/vip", ROUTING]
    assert changes["Queue/vip"].action is Action.CREATE
    assert changes[ROUTING].depends_on == ("Queue/vip",)


def test_a_new_context_variable_updates_the_contract_too(scenario):
    rows = scenario.rows()
    scenario.spec("Workstream", "facebook-support")["contextVariables"] = {"segment": "text"}
    rules = scenario.spec("RoutingRuleSet", "facebook-support-classification")["rules"]
    rules[0]["set"]["segment"] = "consumer"
    changes = changing(scenario.build(rows))

    variable = "Workstream/facebook-support/context.segment"
    assert list(changes) == ["Workstream/facebook-support/contract", variable, CLASSIFICATION]
    assert diff(changes["Workstream/facebook-support/contract"]) == [
        ("contextVariables", {}, {"segment": "text"})
    ]
    assert changes[variable].action is Action.CREATE
    assert diff(changes[CLASSIFICATION]) == [
        (
            "rules[Dutch locale].set",
            {"language": "Dutch"},
            {"language": "Dutch", "segment": "consumer"},
        )
    ]


def test_update_reason_is_grammatical(scenario):
    rows = scenario.rows()
    _queue_priority(scenario)
    assert by_address(scenario.build(rows))["Queue/vip-support"].reason == "1 field differs"


# --- secrets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "address", "path"),
    [
        ("FB_TOKEN_SUPPORT", PAGE_SUPPORT, "accessToken"),
        ("FB_APP_SECRET", "FacebookAccount/contoso-facebook", "applicationSecret"),
    ],
)
def test_a_changed_secret_is_an_update_that_never_shows_it(scenario, variable, address, path):
    rows = scenario.rows()
    old = scenario.env[variable]
    new = f"rotated-{variable.lower()}-c0ffee"
    scenario.env[variable] = new
    built = scenario.build(rows)

    assert list(changing(built)) == [address]
    update = by_address(built)[address]
    assert update.action is Action.UPDATE
    assert update.fields == (
        FieldChange(
            path=path,
            before=None,
            after=None,
            sensitive=True,
            fingerprint=fingerprint(new),
            source=f"env:{variable}",
        ),
    )
    assert update.desired is not None
    assert update.desired[path] is None
    shown = plan_of(built).to_json() + repr(built) + str(built)
    for secret in (old, new, *scenario.env.values()):
        assert secret not in shown


def test_a_secret_left_out_is_cleared_without_a_fingerprint(gbm_scenario):
    agent = gbm_scenario.spec("GoogleBusinessMessagesAccount", "contoso-gbm")["agents"][0]
    agent["clientToken"] = {"fromEnv": "GBM_CLIENT_TOKEN"}
    rows = gbm_scenario.rows()
    del agent["clientToken"]
    update = changing(gbm_scenario.build(rows))[
        "GoogleBusinessMessagesAccount/contoso-gbm/Contoso Stores"
    ]

    assert update.fields == (FieldChange(path="clientToken", sensitive=True),)


def test_a_gbm_service_account_key_split_over_two_columns_matches(gbm_scenario):
    gbm_scenario.env["GBM_KEY"] = "k" * 4000 + "tail"
    rows = gbm_scenario.rows()
    account = gbm_scenario.row(
        rows, "GoogleBusinessMessagesAccount", "GoogleBusinessMessagesAccount/contoso-gbm"
    )
    assert account["msdyn_base64credentialfilestringcontd"] == "tail"

    assert changing(gbm_scenario.build(rows)) == {}


# --- replace: a field set at creation changed -------------------------------------------------


def test_a_changed_queue_type_is_a_replace(scenario):
    rows = scenario.rows()
    scenario.spec("Queue", "vip-support")["type"] = "voice"
    built = scenario.build(rows)

    assert list(changing(built)) == ["Queue/vip-support"]
    replace = by_address(built)["Queue/vip-support"]
    assert replace.action is Action.REPLACE
    assert replace.reason == (
        "type is set at creation (messaging → voice): the Queue is deleted and created again "
        "with the same id"
    )
    assert diff(replace) == [("type", "messaging", "voice")]
    assert replace.id == scenario.id("Queue/vip-support")
    assert replace.etag == 'W/"1"'
    assert replace.desired is not None
    assert replace.desired["type"] == "voice"


def test_a_replaced_workstream_keeps_its_routing_and_links_it_again(scenario):
    rows = scenario.rows()
    scenario.spec("Workstream", "facebook-support")["distribution"]["mode"] = "pick"
    built = scenario.build(rows)
    changes = by_address(built)

    replace = changes["Workstream/facebook-support"]
    assert replace.action is Action.REPLACE
    assert "distribution.mode is set at creation (push → pick)" in replace.reason
    assert diff(replace) == [("distribution.mode", "push", "pick")]
    # Its delete waits for the page to let go of it (the page's link is restrict).
    assert replace.depends_on == (PAGE_SUPPORT,)

    # The routing configuration survives the delete with its link cleared (remove-link): the
    # link is set again, once the workstream is back, on a row whose ETag the delete changed.
    routing = changes["Workstream/facebook-support/routing"]
    assert routing.action is Action.UPDATE
    assert routing.reason == "link to a deleted record cleared; set again"
    assert diff(routing) == [("workstream", None, "facebook-support")]
    assert routing.depends_on == ("Workstream/facebook-support",)
    assert routing.etag is None

    # The page's link would refuse the delete: the page is unlinked first, as read, and
    # linked again after.
    page = changes[PAGE_SUPPORT]
    assert page.action is Action.UPDATE
    assert page.reason == (
        "unlinked while Workstream/facebook-support is deleted and created again, then linked again"
    )
    assert diff(page) == [("workstream", None, "facebook-support")]
    assert page.depends_on == ("Workstream/facebook-support",)
    assert page.etag == 'W/"1"'

    untouched = (PAGE_DEALS, "Workstream/facebook-support/contract", ROUTING, CLASSIFICATION)
    for address in (*untouched, f"{ROUTING}/step", f"{CLASSIFICATION}/step"):
        assert changes[address].action is Action.NOOP
    assert built.follow_up == []
    assert [w for w in built.warnings if w.code == "delete-blocked"] == []


def test_a_replaced_gbm_workstream_sets_its_agents_link_again(gbm_scenario):
    rows = gbm_scenario.rows()
    gbm_scenario.spec("Workstream", "gbm-stores")["distribution"]["mode"] = "push"
    changes = changing(gbm_scenario.build(rows))
    agent = changes["GoogleBusinessMessagesAccount/contoso-gbm/Contoso Stores"]

    # An agent's link to its workstream is remove-link: nothing to unlink, set again after.
    assert changes["Workstream/gbm-stores"].depends_on == ()
    assert (agent.action, agent.reason) == (
        Action.UPDATE,
        "link to a deleted record cleared; set again",
    )
    assert agent.etag is None
    assert agent.depends_on == ("Workstream/gbm-stores",)
    assert changes["Workstream/gbm-stores/routing"].depends_on == ("Workstream/gbm-stores",)


def test_context_variables_are_linked_again_after_a_replace_and_go_with_their_workstream(
    scenario,
):
    variable = "Workstream/facebook-support/context.Segment"
    scenario.spec("Workstream", "facebook-support")["contextVariables"] = {"Segment": "text"}
    rows = scenario.rows()
    scenario.spec("Workstream", "facebook-support")["distribution"]["mode"] = "pick"
    relink = by_address(scenario.build(rows))[variable]

    # Its link to the workstream is remove-link: set again once the workstream is back.
    assert (relink.action, relink.reason, relink.etag, relink.depends_on) == (
        Action.UPDATE,
        "link to a deleted record cleared; set again",
        None,
        ("Workstream/facebook-support",),
    )

    for kind, name in [
        ("RoutingRuleSet", "facebook-support-routing"),
        ("RoutingRuleSet", "facebook-support-classification"),
        ("Workstream", "facebook-support"),
    ]:
        scenario.absent(kind, name)
    changes = by_address(scenario.build(rows))

    # The workstream goes: its variables are deleted too, before it, not left unlinked.
    assert (changes[variable].action, changes[variable].reason) == (
        Action.DELETE,
        "deleted with Workstream/facebook-support",
    )
    assert variable in changes["Workstream/facebook-support"].depends_on


def test_a_replace_says_which_rows_of_others_lose_their_link(scenario):
    rows = scenario.rows()
    rows.setdefault("ContextVariable", []).append(
        {
            "msdyn_ocliveworkstreamcontextvariableid": foreign(9),
            "msdyn_name": "Theirs",
            "msdyn_datatype": 192350000,
            "_msdyn_liveworkstreamid_value": scenario.id("Workstream/facebook-support"),
        }
    )
    scenario.spec("Workstream", "facebook-support")["distribution"]["mode"] = "pick"
    built = scenario.build(rows)
    (warning,) = [w for w in built.warnings if w.code == "link-cleared"]
    assert warning.address == "Workstream/facebook-support"
    assert warning.message.startswith(
        f"ContextVariable 'Theirs' ({foreign(9)}), which this project does not manage, points "
        "at Workstream/facebook-support (msdyn_liveworkstreamid); deleting it clears that link"
    )
    assert built.unmanaged == {"ContextVariable": 1}


def test_a_replaced_queue_takes_nothing_with_it(scenario):
    rows = scenario.rows()
    scenario.spec("Queue", "overflow-support")["type"] = "record"
    assert list(changing(scenario.build(rows))) == ["Queue/overflow-support"]


# --- ensure: absent ---------------------------------------------------------------------------


def test_absent_record_in_the_target_is_deleted(scenario):
    rows = scenario.rows()
    scenario.absent("Queue", "overflow-support")
    scenario.spec("RoutingRuleSet", "facebook-support-routing")["rules"][2]["routeTo"] = (
        "general-support"
    )
    built = scenario.build(rows)
    delete = built.changes[0]

    assert delete.address == "Queue/overflow-support"
    assert delete.action is Action.DELETE
    assert delete.reason == "ensure: absent"
    assert delete.id == scenario.id("Queue/overflow-support")
    assert delete.etag == 'W/"1"'
    assert delete.fields == ()
    assert delete.desired is None
    assert delete.depends_on == ()
    assert plan_of(built).summary.delete == 1


def test_absent_record_not_in_the_target_is_a_noop(scenario):
    scenario.absent("Queue", "never-created")
    noop = by_address(scenario.build(scenario.rows()))["Queue/never-created"]

    assert (noop.action, noop.reason) == (Action.NOOP, "already absent")
    assert noop.id == scenario.id("Queue/never-created")


def test_absent_account_deletes_its_pages_first(scenario):
    for kind in ("Workstream", "RoutingRuleSet"):
        scenario.manifests = [m for m in scenario.manifests if m["kind"] != kind]
    rows = scenario.rows()
    scenario.absent("FacebookAccount", "contoso-facebook")
    built = scenario.build(rows)

    deletes = [(c.address, c.reason, c.depends_on) for c in built.changes[:3]]
    assert deletes == [
        (PAGE_DEALS, "deleted with FacebookAccount/contoso-facebook (cascade)", ()),
        (PAGE_SUPPORT, "deleted with FacebookAccount/contoso-facebook (cascade)", ()),
        ("FacebookAccount/contoso-facebook", "ensure: absent", (PAGE_DEALS, PAGE_SUPPORT)),
    ]
    assert all(c.action is Action.DELETE for c in built.changes[:3])
    assert all(c.action is Action.NOOP for c in built.changes[3:])
    assert by_address(built)[PAGE_SUPPORT].id == scenario.id(PAGE_SUPPORT)


def test_absent_gbm_account_deletes_its_agents_first(gbm_scenario):
    rows = gbm_scenario.rows()
    rows["GoogleBusinessMessagesAgent"].append(
        {
            "msdyn_ocgooglebusinessmessagesagentaccountid": foreign(6),
            "msdyn_name": "Hand-made agent",
            "_msdyn_ocgbmpartneraccount_value": gbm_scenario.id(
                "GoogleBusinessMessagesAccount/contoso-gbm"
            ),
        }
    )
    gbm_scenario.absent("GoogleBusinessMessagesAccount", "contoso-gbm")
    built = gbm_scenario.build(rows)
    agent = "GoogleBusinessMessagesAccount/contoso-gbm/Contoso Stores"

    # The agents' link to their account is remove-link: the plan deletes ours itself rather
    # than leave them unlinked, before the account; someone else's agent is left alone.
    deletes = [(c.address, c.reason, c.depends_on) for c in built.changes[:2]]
    assert deletes == [
        (agent, "deleted with GoogleBusinessMessagesAccount/contoso-gbm", ()),
        ("GoogleBusinessMessagesAccount/contoso-gbm", "ensure: absent", (agent,)),
    ]
    assert all(c.action is Action.DELETE for c in built.changes[:2])
    assert built.unmanaged == {"GoogleBusinessMessagesAgent": 1}


def test_absent_workstream_and_rule_sets_are_deleted_in_reverse_dependency_order(scenario):
    rows = scenario.rows()
    for kind, name in [
        ("RoutingRuleSet", "facebook-support-routing"),
        ("RoutingRuleSet", "facebook-support-classification"),
        ("Workstream", "facebook-support"),
    ]:
        scenario.absent(kind, name)
    built = scenario.build(rows)
    writes = [c for c in built.changes if c.action is not Action.NOOP]

    # The routing configuration is deleted too (remove-link would leave it unlinked), before
    # the workstream; the workstream's delete waits for its page to let go of it (restrict).
    assert [(c.address, c.action, c.depends_on) for c in writes] == [
        (f"{CLASSIFICATION}/step", Action.DELETE, ()),
        (f"{ROUTING}/step", Action.DELETE, ()),
        (
            "Workstream/facebook-support/routing",
            Action.DELETE,
            (f"{CLASSIFICATION}/step", f"{ROUTING}/step"),
        ),
        (CLASSIFICATION, Action.DELETE, (f"{CLASSIFICATION}/step",)),
        (ROUTING, Action.DELETE, (f"{ROUTING}/step",)),
        (PAGE_SUPPORT, Action.UPDATE, ()),
        (
            "Workstream/facebook-support",
            Action.DELETE,
            (PAGE_SUPPORT, "Workstream/facebook-support/routing"),
        ),
        (
            "Workstream/facebook-support/contract",
            Action.DELETE,
            (CLASSIFICATION, ROUTING, "Workstream/facebook-support"),
        ),
    ]
    assert {c.reason for c in writes if c.action is Action.DELETE} == {"ensure: absent"}
    assert ("workstream", "facebook-support", None) in diff(writes[5])


def test_page_of_an_absent_workstream_is_not_said_to_be_linked_again(scenario):
    rows = scenario.rows()
    for kind, name in [
        ("RoutingRuleSet", "facebook-support-routing"),
        ("RoutingRuleSet", "facebook-support-classification"),
        ("Workstream", "facebook-support"),
    ]:
        scenario.absent(kind, name)
    page = by_address(scenario.build(rows))[PAGE_SUPPORT]

    assert page.action is Action.UPDATE
    assert "set again" not in page.reason


def test_a_delete_no_restrict_link_holds_runs_first(scenario):
    rows = scenario.rows()
    scenario.spec("Workstream", "facebook-support")["fallbackQueue"] = "vip-support"
    scenario.spec("RoutingRuleSet", "facebook-support-routing")["rules"][2]["routeTo"] = (
        "overflow-support"
    )
    scenario.absent("Queue", "general-support")
    built = scenario.build(rows)

    # The fallback queue's link is remove-link: the queue's delete needs no wait.
    delete = built.changes[0]
    assert (delete.address, delete.action, delete.depends_on) == (
        "Queue/general-support",
        Action.DELETE,
        (),
    )
    assert by_address(built)["Workstream/facebook-support"].action is Action.UPDATE


# --- prune: our records no manifest describes any more ----------------------------------------


def _leftover_queues(scenario, rows):
    rows["Queue"] += [
        {
            "queueid": scenario.id("Queue/old-queue"),
            "name": "old-queue",
            "msdyn_priority": 3,
            "@odata.etag": 'W/"7"',
        },
        {  # a display name whose slug is the metadata name
            "queueid": scenario.id("Queue/legacy-desk"),
            "name": "Legacy Desk",
            "msdyn_priority": 4,
            "@odata.etag": 'W/"8"',
        },
    ]


def test_our_record_not_in_the_manifests_is_a_warning_without_prune(scenario):
    rows = scenario.rows()
    _leftover_queues(scenario, rows)
    built = scenario.build(rows)

    assert changing(built) == {}
    assert "Queue/old-queue" not in by_address(built)
    assert [(w.code, w.message) for w in built.warnings] == [
        (
            "not-in-manifests",
            "2 records managed by this project are no longer in the manifests "
            "(Queue/legacy-desk, Queue/old-queue); plan with --prune to delete them",
        )
    ]
    assert built.unmanaged == {}


def test_our_record_not_in_the_manifests_is_deleted_with_prune(scenario):
    rows = scenario.rows()
    _leftover_queues(scenario, rows)
    built = scenario.build(rows, prune=True)

    assert [(c.address, c.action, c.reason, c.id, c.etag) for c in built.changes[:2]] == [
        (
            "Queue/legacy-desk",
            Action.DELETE,
            "no longer in the manifests (--prune)",
            scenario.id("Queue/legacy-desk"),
            'W/"8"',
        ),
        (
            "Queue/old-queue",
            Action.DELETE,
            "no longer in the manifests (--prune)",
            scenario.id("Queue/old-queue"),
            'W/"7"',
        ),
    ]
    assert list(changing(built)) == ["Queue/legacy-desk", "Queue/old-queue"]
    assert built.warnings == []


def test_a_page_removed_from_its_account_is_one_leftover(scenario):
    rows = scenario.rows()
    pages = scenario.spec("FacebookAccount", "contoso-facebook")["pages"]
    pages[:] = [p for p in pages if p["name"] != "Contoso Deals"]

    warning = scenario.build(rows).warnings
    assert [w.message for w in warning] == [
        f"1 record managed by this project is no longer in the manifests ({PAGE_DEALS}); "
        "plan with --prune to delete them"
    ]
    pruned = changing(scenario.build(rows, prune=True))
    assert list(pruned) == [PAGE_DEALS]
    assert pruned[PAGE_DEALS].reason == "no longer in the manifests (--prune)"


def test_many_leftovers_are_named_ten_at_most(scenario):
    rows = scenario.rows()
    rows["Queue"] += [
        {"queueid": scenario.id(f"Queue/old-{n:02}"), "name": f"old-{n:02}"} for n in range(12)
    ]
    (warning,) = scenario.build(rows).warnings

    assert warning.message.startswith("12 records managed by this project are no longer")
    assert "Queue/old-09 …)" in warning.message
    assert "Queue/old-10" not in warning.message


def test_prune_of_a_workstream_deletes_its_routing_too(scenario):
    rows = scenario.rows()
    scenario.remove("RoutingRuleSet", "facebook-support-routing")
    scenario.remove("RoutingRuleSet", "facebook-support-classification")
    scenario.remove("Workstream", "facebook-support")
    built = scenario.build(rows, prune=True)
    writes = [
        (c.address, c.action, c.depends_on) for c in built.changes if c.action.value != "noop"
    ]

    assert writes == [
        (f"{CLASSIFICATION}/step", Action.DELETE, ()),
        (f"{ROUTING}/step", Action.DELETE, ()),
        (
            "Workstream/facebook-support/routing",
            Action.DELETE,
            (f"{CLASSIFICATION}/step", f"{ROUTING}/step"),
        ),
        (CLASSIFICATION, Action.DELETE, (f"{CLASSIFICATION}/step",)),
        (ROUTING, Action.DELETE, (f"{ROUTING}/step",)),
        (PAGE_SUPPORT, Action.UPDATE, ()),
        (
            "Workstream/facebook-support",
            Action.DELETE,
            (PAGE_SUPPORT, "Workstream/facebook-support/routing"),
        ),
        (
            "Workstream/facebook-support/contract",
            Action.DELETE,
            (CLASSIFICATION, ROUTING, "Workstream/facebook-support"),
        ),
    ]
    deletes = [c for c in built.changes if c.action is Action.DELETE]
    assert {c.reason for c in deletes} == {"no longer in the manifests (--prune)"}
    page = by_address(built)[PAGE_SUPPORT]
    assert ("facebook.language", "nl-NL", None) in diff(page)


def test_our_workstream_with_a_free_display_name_is_proved_ours_through_its_contract(scenario):
    scenario.spec("Workstream", "facebook-support")["displayName"] = "Social care"
    scenario.spec("RoutingRuleSet", "facebook-support-routing")["displayName"] = "Who goes where"
    rows = scenario.rows()
    for kind, name in (
        ("RoutingRuleSet", "facebook-support-routing"),
        ("RoutingRuleSet", "facebook-support-classification"),
        ("Workstream", "facebook-support"),
    ):
        scenario.remove(kind, name)
    built = scenario.build(rows, prune=True)

    found = actions(built)
    assert found["Workstream/facebook-support"] is Action.DELETE
    assert found["RoutingRuleSet/facebook-support-routing"] is Action.DELETE  # through its step
    assert built.unmanaged == {}


def test_our_queue_with_a_free_display_name_cannot_be_told_from_others(scenario):
    """Known limit: no queue column keeps the metadata name, and "Klantenservice NL" does not
    slug to "dutch-support", so once its manifest is gone the queue is left alone as unmanaged
    (never deleted by mistake). `ensure: absent` still deletes it."""
    rows = scenario.rows()
    scenario.remove("Queue", "dutch-support")
    scenario.spec("RoutingRuleSet", "facebook-support-routing")["rules"][1]["routeTo"] = (
        "general-support"
    )
    built = scenario.build(rows, prune=True)
    assert "Queue/dutch-support" not in actions(built)
    assert built.unmanaged == {"Queue": 1}

    scenario.absent("Queue", "dutch-support")
    assert actions(scenario.build(rows))["Queue/dutch-support"] is Action.DELETE


# --- conflicts: the same thing, made by someone else ------------------------------------------


@pytest.mark.parametrize(
    ("kind", "address", "row"),
    [
        ("Queue", "Queue/vip-support", {"queueid": foreign(1), "name": "vip SUPPORT"}),
        (
            "FacebookAccount",
            "FacebookAccount/contoso-facebook",
            {"msdyn_ocfbapplicationid": foreign(1), "msdyn_name": "Contoso Facebook"},
        ),
        (
            "Workstream",
            "Workstream/facebook-support",
            {"msdyn_liveworkstreamid": foreign(1), "msdyn_name": "FACEBOOK SUPPORT"},
        ),
        (
            "RoutingRuleSet",
            ROUTING,
            {"msdyn_decisionrulesetid": foreign(1), "msdyn_name": "facebook-support-routing"},
        ),
    ],
)
def test_same_display_name_not_ours_is_a_conflict(scenario, kind, address, row):
    built = scenario.build({kind: [row]})
    conflict = by_address(built)[address]

    assert conflict.action is Action.CONFLICT
    assert f"a {kind} with the name {row[k.BY_NAME[kind].table.primary_name]!r}" in (
        conflict.reason
    )
    assert f"(id {foreign(1)})" in conflict.reason
    assert f"set metadata.id: {foreign(1)}" in conflict.reason
    assert "`reconciler export`" in conflict.reason
    assert conflict.id == scenario.id(address)
    assert conflict.fields == ()
    assert conflict.desired is None
    assert built.unmanaged == {}  # the conflicting row is reported, not counted
    assert plan_of(built).summary.conflict == 1
    assert plan_of(built).has_conflicts


def test_conflicts_are_told_apart_from_unmanaged_rows(scenario):
    rows = scenario.rows()
    scenario.manifests.append(
        {**scenario.find("Queue", "overflow-support"), "metadata": {"name": "callbacks"}}
    )
    rows["Queue"] += [
        {"queueid": foreign(1), "name": "Callbacks"},  # conflict
        {"queueid": foreign(2), "name": "Somebody else's queue"},  # unmanaged
    ]
    built = scenario.build(rows)

    assert by_address(built)["Queue/callbacks"].action is Action.CONFLICT
    assert built.unmanaged == {"Queue": 1}


def test_a_facebook_page_under_someone_elses_app_is_a_conflict(scenario):
    rows = {
        "FacebookAccount": [{"msdyn_ocfbapplicationid": foreign(1), "msdyn_name": "Other app"}],
        "FacebookPage": [
            {
                "msdyn_ocfbpageid": foreign(2),
                "msdyn_fbpagename": "Deals (old)",
                "msdyn_fbpageid": "104857600000002",
                "_msdyn_ocfbapplicationid_value": foreign(1),
            }
        ],
    }
    built = scenario.build(rows)
    conflict = by_address(built)[PAGE_DEALS]

    assert conflict.action is Action.CONFLICT
    assert "a FacebookPage with page ID 104857600000002 already exists" in conflict.reason
    assert f"(id {foreign(2)})" in conflict.reason
    assert by_address(built)[PAGE_SUPPORT].action is Action.CREATE
    assert built.unmanaged == {"FacebookAccount": 1}
    # Only the page clashes: its follow-up is for the page created.
    assert [f.address for f in built.follow_up] == [PAGE_SUPPORT]


def test_a_page_conflict_advises_adopting_its_app(scenario):
    rows = {
        "FacebookPage": [
            {
                "msdyn_ocfbpageid": foreign(2),
                "msdyn_fbpagename": "Deals",
                "msdyn_fbpageid": "104857600000002",
                "_msdyn_ocfbapplicationid_value": foreign(1),
            }
        ],
    }
    reason = by_address(scenario.build(rows))[PAGE_DEALS].reason

    assert f"metadata.id: {foreign(2)}" not in reason
    assert f"metadata.id: {foreign(1)}" in reason


def test_a_gbm_agent_with_the_same_agent_id_is_a_conflict(gbm_scenario):
    rows = {
        "GoogleBusinessMessagesAgent": [
            {
                "msdyn_ocgooglebusinessmessagesagentaccountid": foreign(3),
                "msdyn_name": "Stores",
                "msdyn_agentid": "STORES-AGENT",
            }
        ]
    }
    built = gbm_scenario.build(rows)
    conflict = by_address(built)["GoogleBusinessMessagesAccount/contoso-gbm/Contoso Stores"]

    assert conflict.action is Action.CONFLICT
    assert "agent ID stores-agent" in conflict.reason


def test_rows_that_are_ours_or_the_orgs_do_not_conflict(scenario):
    rows = scenario.rows()
    # The org's default queue, and our own queue about to be renamed, share a wanted name.
    scenario.spec("Queue", "general-support")["displayName"] = "Default entity queue"
    scenario.find("Queue", "overflow-support")["metadata"]["name"] = "overflow"
    scenario.spec("RoutingRuleSet", "facebook-support-routing")["rules"][2]["routeTo"][1][
        "queue"
    ] = "overflow"
    built = scenario.build(rows)
    changes = by_address(built)

    assert changes["Queue/general-support"].action is Action.UPDATE
    assert changes["Queue/overflow"].action is Action.CREATE
    assert [w.code for w in built.warnings] == ["not-in-manifests"]
    assert "Queue/overflow-support" in built.warnings[0].message


# --- unmanaged: everything else ---------------------------------------------------------------


def test_rows_of_others_are_counted_per_kind(scenario):
    rows = scenario.rows()
    rows["Queue"].append({"queueid": foreign(1), "name": "Email triage"})
    rows["Workstream"].append({"msdyn_liveworkstreamid": foreign(2), "msdyn_name": "Chat"})
    rows["RoutingConfiguration"].append(
        {
            "msdyn_routingconfigurationid": foreign(3),
            "msdyn_name": "Chat routing",
            "_msdyn_liveworkstreamid_value": foreign(2),
        }
    )
    rows["DecisionContract"].append({"msdyn_decisioncontractid": foreign(4), "msdyn_name": "c"})
    rows["FacebookPage"].append(
        {
            "msdyn_ocfbpageid": foreign(5),
            "msdyn_fbpagename": "Hand-made page",
            "msdyn_fbpageid": "999",
            "_msdyn_ocfbapplicationid_value": scenario.id("FacebookAccount/contoso-facebook"),
        }
    )
    built = scenario.build(rows)

    assert changing(built) == {}
    assert built.unmanaged == {
        "Queue": 1,
        "DecisionContract": 1,
        "Workstream": 1,
        "RoutingConfiguration": 1,
        "FacebookPage": 1,
    }
    assert plan_of(built).unmanaged == built.unmanaged


def test_rows_of_others_under_a_deleted_record_go_with_it(scenario):
    rows = scenario.rows()
    page = {
        "msdyn_ocfbpageid": foreign(5),
        "msdyn_fbpagename": "Hand-made page",
        "msdyn_fbpageid": "999",
        "_msdyn_ocfbapplicationid_value": scenario.id("FacebookAccount/contoso-facebook"),
    }
    rows["FacebookPage"].append(page)
    for kind in ("Workstream", "RoutingRuleSet"):
        scenario.manifests = [m for m in scenario.manifests if m["kind"] != kind]
    scenario.absent("FacebookAccount", "contoso-facebook")
    built = scenario.build(rows, prune=True)
    cascade = by_address(built)[f"FacebookAccount/contoso-facebook/Hand-made page#{foreign(5)}"]

    assert cascade.action is Action.DELETE
    assert cascade.id == foreign(5)
    assert cascade.reason == "deleted with FacebookAccount/contoso-facebook (cascade)"
    assert built.unmanaged == {}


# --- adoption: metadata.id --------------------------------------------------------------------


def test_adopted_queue_is_matched_by_its_id(scenario):
    scenario.find("Queue", "vip-support")["metadata"]["id"] = foreign(1)
    rows = scenario.rows(ids={"Queue/vip-support": foreign(1)})
    queue = next(r for r in rows["Queue"] if r["queueid"] == foreign(1))
    queue["msdyn_priority"] = 9
    built = scenario.build(rows)

    assert list(changing(built)) == ["Queue/vip-support"]
    adopt = by_address(built)["Queue/vip-support"]
    assert (adopt.action, adopt.id, adopt.current_name) == (Action.ADOPT, foreign(1), "VIP support")
    assert diff(adopt) == [("priority", 9, 1)]
    assert built.unmanaged == {}


def test_adopted_account_and_workstream_bring_their_children(scenario):
    made_by_others = {
        "FacebookAccount/contoso-facebook": foreign(1),
        PAGE_SUPPORT: foreign(2),
        PAGE_DEALS: foreign(3),
        "Workstream/facebook-support": foreign(4),
        "Workstream/facebook-support/contract": foreign(5),
        "Workstream/facebook-support/routing": foreign(6),
    }
    scenario.find("FacebookAccount", "contoso-facebook")["metadata"]["id"] = foreign(1)
    scenario.find("Workstream", "facebook-support")["metadata"]["id"] = foreign(4)
    rows = scenario.rows(ids=made_by_others)
    for kind in ("DecisionContract", "RoutingConfiguration"):
        for row in rows[kind]:
            if row.get("msdyn_uniquename", "").startswith("rcn_"):
                row["msdyn_name"], row["msdyn_uniquename"] = "Made in the admin app", "x"
    built = scenario.build(rows)

    # Adopted, every one, with nothing to write.
    assert {a: (c.action, c.fields) for a, c in changing(built).items()} == dict.fromkeys(
        made_by_others, (Action.ADOPT, ())
    )
    assert {a: c.id for a, c in by_address(built).items() if a in made_by_others} == (
        made_by_others
    )
    assert built.unmanaged == {}
    assert built.warnings == []


def test_an_adopted_workstream_prefers_its_active_routing_configuration(scenario):
    scenario.find("Workstream", "facebook-support")["metadata"]["id"] = foreign(4)
    rows = scenario.rows(ids={"Workstream/facebook-support": foreign(4)})
    (ours,) = rows["RoutingConfiguration"]
    draft = {**ours, "msdyn_routingconfigurationid": foreign(7)}
    draft["msdyn_isactiveconfiguration"] = False
    active = {**ours, "msdyn_routingconfigurationid": foreign(6)}
    rows["RoutingConfiguration"] = [draft, active]
    built = scenario.build(rows)

    assert by_address(built)["Workstream/facebook-support/routing"].id == foreign(6)
    assert built.unmanaged == {"RoutingConfiguration": 1}


def test_an_adopted_account_leaves_other_pages_alone(scenario):
    scenario.find("FacebookAccount", "contoso-facebook")["metadata"]["id"] = foreign(1)
    rows = scenario.rows(ids={"FacebookAccount/contoso-facebook": foreign(1)})
    rows["FacebookPage"].append(
        {
            "msdyn_ocfbpageid": foreign(9),
            "msdyn_fbpagename": "Contoso Jobs",
            "msdyn_fbpageid": "104857600000009",
            "_msdyn_ocfbapplicationid_value": foreign(1),
        }
    )
    built = scenario.build(rows, prune=True)

    # The account is adopted; its pages, made from the namespace, are ours already.
    assert {a: c.action for a, c in changing(built).items()} == {
        "FacebookAccount/contoso-facebook": Action.ADOPT
    }
    assert built.unmanaged == {"FacebookPage": 1}


# --- warnings from the target -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "warned"),
    [(55, True), (45, True), (44, False)],
)
def test_token_age_warns_for_pages_written_long_ago(scenario, days, warned):
    rows = scenario.rows()
    written = scenario.today - datetime.timedelta(days=days)
    for page in rows["FacebookPage"]:
        page["modifiedon"] = f"{written.isoformat()}T08:30:00Z"
    built = scenario.build(rows)

    # Contoso Support has tokenRotatedOn: validation tracks it, the plan does not guess.
    expected = [("token-age", PAGE_DEALS)] if warned else []
    assert [(w.code, w.address) for w in built.warnings] == expected
    if warned:
        assert f"last written {days} days ago" in built.warnings[0].message
        assert "tokenRotatedOn" in built.warnings[0].message
        assert built.warnings[0].location == "manifests.yaml:1:1"


def test_token_age_is_quiet_when_the_token_changes_or_the_date_is_unknown(scenario):
    rows = scenario.rows()
    support, deals = (scenario.row(rows, "FacebookPage", a) for a in (PAGE_SUPPORT, PAGE_DEALS))
    deals["modifiedon"] = "2024-01-01T00:00:00Z"
    del support["modifiedon"]
    scenario.spec("FacebookAccount", "contoso-facebook")["pages"][0].pop("tokenRotatedOn")
    scenario.env["FB_TOKEN_DEALS"] = "a-fresh-token"

    assert scenario.build(rows).warnings == []


@pytest.mark.parametrize(
    ("with_agent", "count"),
    [
        (True, "2 Google's Business Messages records"),
        (False, "1 Google's Business Messages record;"),
    ],
)
def test_gbm_rows_in_the_target_warn_of_the_retired_channel(gbm_scenario, with_agent, count):
    rows = gbm_scenario.rows()
    if not with_agent:
        rows["GoogleBusinessMessagesAgent"] = []
    (warning,) = gbm_scenario.build(rows).warnings

    assert warning.code == "retired-channel"
    assert count in warning.message
    assert "retired on 31 July 2024" in warning.message


# --- problems: what makes the plan impossible -------------------------------------------------


def test_a_language_the_target_lacks_is_a_problem(scenario):
    rows = scenario.rows()
    scenario.spec("Workstream", "facebook-support")["facebook"]["language"] = "de-DE"
    (problem,) = scenario.build(rows).problems

    assert problem.is_error
    assert problem.code == "cannot-plan"
    assert PAGE_SUPPORT in problem.message
    assert "language de-DE is not available in the target (it has: en-US, nl-NL)" in (
        problem.message
    )


def test_a_target_without_the_output_contract_cannot_take_route_to_queue_rules(scenario):
    scenario.output_contract = None
    (problem,) = scenario.build({}).problems

    assert problem.message.startswith(f"{ROUTING}: ")
    assert "msdyn_demandqueueidentificationoutput" in problem.message


# --- determinism ------------------------------------------------------------------------------


def _busy_target(scenario):
    """A target where a bit of everything happens."""
    rows = scenario.rows()
    _leftover_queues(scenario, rows)
    rows["Queue"].append({"queueid": foreign(1), "name": "Email triage"})
    rows["Queue"].append({"queueid": foreign(2), "name": "Callbacks"})
    scenario.manifests.append(manifest("Queue", "callbacks", priority=2))
    _queue_priority(scenario)
    scenario.spec("Workstream", "facebook-support")["distribution"]["mode"] = "pick"
    scenario.absent("Queue", "gone")
    scenario.env["FB_TOKEN_DEALS"] = "another-token"
    return rows


def test_building_twice_gives_the_same_plan(scenario):
    rows = _busy_target(scenario)
    first, second = scenario.build(rows, prune=True), scenario.build(rows, prune=True)

    assert first == second
    assert plan_of(first).checksum == plan_of(second).checksum


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_the_order_of_records_and_rows_does_not_matter(scenario, seed):
    rows = _busy_target(scenario)
    records = scenario.records()
    expected = scenario.build(rows, prune=True, records=records)
    shuffle = random.Random(seed).shuffle
    shuffle(records)
    shuffled = {}
    for kind in random.Random(seed).sample(sorted(rows), len(rows)):
        shuffled[kind] = list(rows[kind])
        shuffle(shuffled[kind])

    assert scenario.build(shuffled, prune=True, records=records) == expected


def _two_draft_routings(scenario):
    scenario.find("Workstream", "facebook-support")["metadata"]["id"] = foreign(4)
    rows = scenario.rows(ids={"Workstream/facebook-support": foreign(4)})
    (ours,) = rows["RoutingConfiguration"]
    rows["RoutingConfiguration"] = [
        {**ours, "msdyn_routingconfigurationid": foreign(n), "msdyn_isactiveconfiguration": False}
        for n in (6, 7)
    ]
    return rows, "RoutingConfiguration"


def _two_queues_of_the_same_name(scenario):
    rows = {"Queue": [{"queueid": foreign(1), "name": "VIP support"}]}
    rows["Queue"].append({"queueid": foreign(2), "name": "vip support"})
    return rows, "Queue"


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(
            _two_draft_routings,
            id="adopted-child",
        ),
        pytest.param(
            _two_queues_of_the_same_name,
            id="conflict",
        ),
    ],
)
def test_the_order_of_rows_does_not_choose_between_equal_candidates(scenario, target):
    rows, kind = target(scenario)
    first = scenario.build(rows)
    rows[kind].reverse()

    assert scenario.build(rows) == first


def test_a_rule_set_whose_output_points_elsewhere_is_put_right(scenario):
    rows = scenario.rows()
    row = scenario.row(rows, "RoutingRuleSet", ROUTING)
    row["_msdyn_outputcontractid_value"] = scenario.id("Workstream/facebook-support/contract")
    built = scenario.build(rows)
    change = by_address(built)[ROUTING]
    assert change.action is Action.UPDATE
    # Its contracts made it read as a classification set: both are put right.
    assert [(f.path, f.before, f.after) for f in change.fields] == [
        ("type", "classification", "route-to-queue"),
        ("outputContract", "facebook-support", "msdyn_demandqueueidentificationoutput"),
    ]
    # Its rules are what the manifest writes: nothing to say of them.
    assert not [w for w in built.warnings if w.code == "left-as-is"]


def test_a_replace_a_remaining_row_blocks_is_warned_about(scenario):
    rows = scenario.rows()
    rows["FacebookPage"].append(
        {
            "msdyn_ocfbpageid": foreign(7),
            "msdyn_fbpagename": "Hand-made page",
            "msdyn_fbpageid": "999",
            "_msdyn_liveworkstreamid_value": scenario.id("Workstream/facebook-support"),
        }
    )
    scenario.spec("Workstream", "facebook-support")["distribution"]["mode"] = "pick"
    built = scenario.build(rows)

    # A page the project does not manage keeps the workstream from being deleted (restrict):
    # the apply will be refused, so the project's own page is not unlinked for nothing.
    warnings = [w for w in built.warnings if w.code == "delete-blocked"]
    assert {w.address for w in warnings} == {"Workstream/facebook-support"}
    assert all("cannot be replaced while" in w.message for w in warnings)
    assert all("msdyn_liveworkstreamid" in w.message for w in warnings)
    held = [
        w.message for w in warnings if f"FacebookPage 'Hand-made page' ({foreign(7)})" in w.message
    ]
    assert len(held) == 1
    assert any(PAGE_SUPPORT in w.message for w in warnings)
    changes = by_address(built)
    assert changes[PAGE_SUPPORT].action is Action.NOOP
    assert changes["Workstream/facebook-support"].depends_on == ()


def test_a_delete_freed_by_an_update_in_the_same_plan_is_not_warned_about(scenario):
    rows = scenario.rows()
    for kind, name in [
        ("RoutingRuleSet", "facebook-support-routing"),
        ("RoutingRuleSet", "facebook-support-classification"),
        ("Workstream", "facebook-support"),
    ]:
        scenario.absent(kind, name)
    built = scenario.build(rows)
    assert [w for w in built.warnings if w.code == "delete-blocked"] == []
    assert actions(built)["Workstream/facebook-support"] is Action.DELETE
    assert actions(built)[PAGE_SUPPORT] is Action.UPDATE


# --- ETags of rows a delete in the same plan changes first ------------------------------------


def test_a_page_unlinked_while_its_workstream_is_replaced_keeps_its_etag(scenario):
    rows = scenario.rows()
    scenario.row(rows, "FacebookPage", PAGE_SUPPORT)["@odata.etag"] = 'W/"5"'
    scenario.spec("Workstream", "facebook-support")["distribution"]["mode"] = "pick"
    changes = by_address(scenario.build(rows))

    page = changes[PAGE_SUPPORT]
    assert page.action is Action.UPDATE
    assert page.reason.startswith("unlinked while Workstream/facebook-support")
    # The plan unlinks the page as read, before anything else touches it.
    assert page.etag == 'W/"5"'
    # The replace itself deletes the row as read.
    assert changes["Workstream/facebook-support"].etag == 'W/"1"'


def test_a_page_whose_workstream_is_deleted_is_updated_as_read_before_the_delete(scenario):
    rows = scenario.rows()
    for kind, name in [
        ("RoutingRuleSet", "facebook-support-routing"),
        ("RoutingRuleSet", "facebook-support-classification"),
        ("Workstream", "facebook-support"),
    ]:
        scenario.absent(kind, name)
    changes = by_address(scenario.build(rows))

    assert changes[PAGE_SUPPORT].action is Action.UPDATE
    assert changes[PAGE_SUPPORT].etag == 'W/"1"'
    assert changes["Workstream/facebook-support"].action is Action.DELETE
    assert changes["Workstream/facebook-support"].etag == 'W/"1"'
    assert PAGE_SUPPORT in changes["Workstream/facebook-support"].depends_on


def test_a_row_a_remove_link_delete_clears_is_written_without_an_etag(scenario):
    rows = scenario.rows()
    scenario.spec("Workstream", "facebook-support")["fallbackQueue"] = "vip-support"
    scenario.spec("Workstream", "facebook-support")["distribution"]["mode"] = "pick"
    scenario.absent("Queue", "general-support")
    scenario.spec("RoutingRuleSet", "facebook-support-routing")["rules"][2]["routeTo"] = (
        "overflow-support"
    )
    changes = by_address(scenario.build(rows))

    # The queue's delete (first) clears the workstream's fallback: its replace deletes it
    # whatever its ETag is by then.
    assert changes["Queue/general-support"].action is Action.DELETE
    assert changes["Workstream/facebook-support"].action is Action.REPLACE
    assert changes["Workstream/facebook-support"].etag is None


def test_a_page_update_no_delete_touches_keeps_its_etag(scenario):
    rows = scenario.rows()
    scenario.row(rows, "FacebookPage", PAGE_SUPPORT)["@odata.etag"] = 'W/"5"'
    scenario.spec("Workstream", "facebook-support")["facebook"]["fileAttachments"]["agent"] = True
    changes = by_address(scenario.build(rows))

    assert changes[PAGE_SUPPORT].action is Action.UPDATE
    assert changes[PAGE_SUPPORT].etag == 'W/"5"'


def test_the_json_of_a_plan_is_what_json_dumps_would_write(gbm_scenario):
    """``to_json`` uses pydantic's serializer for speed; its text must not differ."""
    gbm_scenario.spec("Queue", "general-support")["description"] = 'Ünïcode "quoted" \\ 日本 🎉\n\t'
    for rows in ({}, gbm_scenario.rows()):
        plan = plan_of(gbm_scenario.build(rows))
        assert plan.changes
        assert plan.to_json() == json.dumps(plan.data(), indent=2, ensure_ascii=False) + "\n"


def test_the_checksum_hashed_a_change_at_a_time_is_the_checksum_of_the_json(gbm_scenario):
    gbm_scenario.spec("Queue", "general-support")["description"] = 'Ünïcode "q" 日本 🎉\n'
    for rows in ({}, gbm_scenario.rows()):
        plan = plan_of(gbm_scenario.build(rows))
        assert plan.checksum == compute_checksum(plan.data())
        assert plan.model_copy(update={"changes": ()}).computed_checksum() == compute_checksum(
            {**plan.data(), "changes": []}
        )


@pytest.mark.parametrize(("before", "after"), [(1, True), (1, 1.0), (0.0, -0.0), ("1", True)])
def test_values_written_differently_are_a_change_even_when_python_calls_them_equal(
    scenario, before, after
):
    rule = scenario.spec("RoutingRuleSet", "facebook-support-routing")["rules"][0]
    rule["when"] = {"field": "conversation.msdyn_score", "op": "equals", "value": before}
    rows = scenario.rows()
    rule["when"]["value"] = after
    change = by_address(scenario.build(rows))[ROUTING]
    assert change.action is Action.UPDATE
    assert [f.path for f in change.fields] == ["rules[Known VIP customer].when"]


def test_the_same_text_is_no_change():
    assert builder.same({"a": [1, "x"]}, {"a": [1, "x"]})
    assert not builder.same({"a": [1]}, {"a": [True]})
    assert not builder.same([1.0], [1])


OLD_RULES = (
    '<decision hit-policy="all" version="1"><rules><rule id="{rule}" name="Known VIP customer">'
    '<condition operator="eq"><lhs type="attribute">msdyn_facebookengagementctx.msdyn_customername'
    '</lhs><rhs type="staticvalue" datatype="string">Jan de Vries</rhs></condition><action>'
    '<setattribute><lhs type="attribute">assign_to.queue</lhs><rhs type="staticvalue">{queue}'
    "</rhs></setattribute></action></rule></rules></decision>"
)


def test_what_the_first_version_wrote_is_rewritten_in_the_real_grammar(scenario):
    """The first version guessed its spellings (operator="eq", datatype attributes, type
    192350001 for route-to-queue sets, an <attribute> contract): no real org holds them, so
    they are ours to put right, not rules to leave as they are."""
    rows = scenario.rows()
    row = scenario.row(rows, "RoutingRuleSet", ROUTING)
    row["msdyn_rulesettype"] = 192350001
    row["msdyn_rulesetdefinition"] = OLD_RULES.format(
        rule=foreign(1), queue=scenario.id("Queue/vip-support")
    )
    contract = scenario.row(rows, "DecisionContract", "Workstream/facebook-support/contract")
    contract["msdyn_contractdefinition"] = (
        '<contract><attribute name="language" type="string"/></contract>'
    )
    built = scenario.build(rows)
    changes = by_address(built)
    assert [f.path for f in changes[ROUTING].fields][:2] == ["type", "rules"]
    assert changes[ROUTING].fields[1].before == k.LEGACY
    assert [f.path for f in changes["Workstream/facebook-support/contract"].fields] == [
        "channel",
        "contextVariables",
    ]
    assert not [w for w in built.warnings if w.code == "left-as-is"]


# --- ownership: the ledger (docs/ownership.md) ------------------------------------------------


def ledger_of(scenario, entries: dict[str, tuple[str, str]]) -> Ledger:
    """The namespace's ledger as the target holds it: address → (id, origin), one page."""
    page = Page(0, ledger_page_id(scenario.namespace, 0), 'W/"1"')
    for address, (record_id, origin) in entries.items():
        table = k.BY_NAME[address.split("/")[0]].table.logical_name
        page.entries[record_id] = Entry(address, table, record_id, origin)  # type: ignore[arg-type]
    return Ledger(scenario.namespace, [page])


def test_an_adoption_is_an_action_of_its_own_until_the_ledger_lists_it(scenario):
    scenario.find("Queue", "vip-support")["metadata"]["id"] = foreign(1)
    rows = scenario.rows(ids={"Queue/vip-support": foreign(1)})
    found = next(r for r in rows["Queue"] if r["queueid"] == foreign(1))
    found["name"] = "VIP (made by hand)"
    built = scenario.build(rows, ledger=Ledger(scenario.namespace))
    adopt = by_address(built)["Queue/vip-support"]
    assert (adopt.action, adopt.adopted, adopt.current_name) == (
        Action.ADOPT,
        True,
        "VIP (made by hand)",
    )
    assert diff(adopt) == [("displayName", "VIP (made by hand)", "VIP support")]
    assert plan_of(built).summary.adopt == 1

    listed = ledger_of(scenario, {"Queue/vip-support": (foreign(1), "adopted")})
    found["name"] = "VIP support"
    assert changing(scenario.build(rows, ledger=listed)) == {}


def test_prune_deletes_what_the_ledger_lists_whatever_its_name_and_nothing_else(scenario):
    rows = scenario.rows()
    hand_made = {**scenario.row(rows, "Queue", "Queue/overflow-support"), "queueid": foreign(2)}
    hand_made["name"] = "Cases - Back office"
    listed = {**hand_made, "queueid": foreign(3), "name": "Priority care (dev)"}
    rows["Queue"] += [hand_made, listed]
    ledger = ledger_of(
        scenario,
        {
            "Queue/priority-care": (foreign(3), "adopted"),
            "Queue/general-support": (scenario.id("Queue/general-support"), "created"),
        },
    )
    built = scenario.build(rows, prune=True, ledger=ledger)
    assert {a: c.action for a, c in changing(built).items()} == {
        "Queue/priority-care": Action.DELETE
    }
    delete = changing(built)["Queue/priority-care"]
    assert (delete.id, delete.current_name, delete.adopted) == (
        foreign(3),
        "Priority care (dev)",
        True,
    )
    assert built.unmanaged["Queue"] >= 1  # the hand-made one, left alone
    assert built.managed == len(scenario.records()) + 1


def test_previous_names_keep_the_id_and_say_renamed_from(scenario):
    rows = scenario.rows()
    queue = scenario.find("Queue", "overflow-support")
    queue["metadata"] = {"name": "spill-over", "previousNames": ["overflow-support"]}
    rule_set = scenario.find("RoutingRuleSet", "facebook-support-routing")
    text = json.dumps(rule_set).replace('"overflow-support"', '"spill-over"')  # its references
    rule_set.clear()
    rule_set.update(json.loads(text))
    built = scenario.build(rows)
    renamed = by_address(built)["Queue/spill-over"]
    assert (renamed.action, renamed.id, renamed.renamed_from) == (
        Action.UPDATE,
        scenario.id("Queue/overflow-support"),
        "Queue/overflow-support",
    )
    # Its display name follows its name (it has none of its own): one update, in place.
    assert diff(renamed) == [("displayName", "overflow-support", "spill-over")]
    assert list(changing(built)) == ["Queue/spill-over"]


def test_a_rename_without_previous_names_is_ours_not_someone_elses(scenario):
    rows = scenario.rows()
    queue = scenario.find("Queue", "vip-support")
    queue["metadata"] = {"name": "premium-support"}
    built = scenario.build(rows)
    conflict = by_address(built)["Queue/premium-support"]
    assert conflict.action is Action.CONFLICT
    assert conflict.reason.startswith(
        "a Queue named 'VIP support' is ours, under Queue/vip-support "
        f"(id {scenario.id('Queue/vip-support')}); rename with "
        "metadata.previousNames: [vip-support]?"
    )
    pruned = scenario.build(rows, prune=True)
    assert actions(pruned)["Queue/premium-support"] is Action.CREATE
    assert actions(pruned)["Queue/vip-support"] is Action.DELETE
    assert [w.code for w in pruned.warnings] == ["rename-hint"]


def test_an_org_without_a_ledger_gets_one_from_the_proofs_and_is_told_once(scenario):
    rows = scenario.rows()
    scenario.remove("Queue", "overflow-support")  # still in the target, provably ours
    built = scenario.build(rows, ledger=Ledger(scenario.namespace))
    (warning,) = [w for w in built.warnings if w.code == "ledger-new"]
    assert "the target has no ledger of this project" in warning.message
    assert "1 of them found by their ids alone" in warning.message
    assert built.ledger is not None
    assert not built.ledger.found
    assert [e.address for e in built.ledger.add] == ["Queue/overflow-support"]
    assert built.ledger.pending == len(scenario.records()) + 1


def test_a_name_a_record_was_renamed_from_cannot_name_a_new_record(scenario):
    """Renamed overflow-support → spill-over (applied: the ledger lists the row there), then
    previousNames dropped and a new overflow-support written: the new one cannot have the
    renamed record's id, nor take its row."""
    rows = scenario.rows()
    renamed_id = scenario.id("Queue/overflow-support")
    scenario.find("Queue", "overflow-support")["metadata"] = {"name": "spill-over"}
    scenario.manifests.append(manifest("Queue", "overflow-support", priority=30))
    ledger = ledger_of(scenario, {"Queue/spill-over": (renamed_id, "created")})
    built = scenario.build(rows, ledger=ledger)
    spill = by_address(built)["Queue/spill-over"]
    assert (spill.action, spill.id) == (Action.UPDATE, renamed_id)  # its display name follows
    new = by_address(built)["Queue/overflow-support"]
    assert new.action is Action.CONFLICT
    assert new.reason == (
        f"its id ({renamed_id}, derived from Queue/overflow-support) is the record this project "
        "renamed to Queue/spill-over (the ledger lists it there); a name a record was renamed "
        "from cannot name a new record: choose another name"
    )


OTHER_NAMESPACE = "0b9a8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d"


def test_a_record_another_project_manages_is_never_adopted_nor_deleted(scenario):
    rows = scenario.rows()
    theirs = {**scenario.row(rows, "Queue", "Queue/overflow-support"), "queueid": foreign(5)}
    theirs["name"] = "Returns"
    rows["Queue"].append(theirs)
    others = {foreign(5): (OTHER_NAMESPACE, "Queue/returns")}
    scenario.manifests.append(manifest("Queue", "returns", displayName="Returns", priority=3))
    scenario.find("Queue", "returns")["metadata"]["id"] = foreign(5)
    ledger = Ledger(scenario.namespace, others=others)
    built = scenario.build(rows, ledger=ledger)
    conflict = by_address(built)["Queue/returns"]
    assert conflict.action is Action.CONFLICT
    assert conflict.reason == (
        f"Queue 'Returns' (id {foreign(5)}) is managed by another project (namespace "
        f"{OTHER_NAMESPACE}, as Queue/returns); a record has one owner, and this project never "
        "changes another's"
    )
    scenario.absent("Queue", "returns")
    scenario.find("Queue", "returns")["metadata"]["id"] = foreign(5)
    assert by_address(scenario.build(rows, ledger=ledger))["Queue/returns"].action is (
        Action.CONFLICT
    )

    # Listed by both (adopted by both before this check): --prune leaves it, and says why.
    scenario.remove("Queue", "returns")
    both = ledger_of(scenario, {"Queue/returns": (foreign(5), "adopted")})
    both.others = others
    pruned = scenario.build(rows, prune=True, ledger=both)
    assert "Queue/returns" not in changing(pruned)
    (warning,) = [w for w in pruned.warnings if w.code == "shared-record"]
    assert warning.message.startswith(
        f"Queue/returns (id {foreign(5)}) is not deleted: another project manages it too"
    )


def test_a_rename_reverted_is_a_rename_back(scenario):
    """Renamed overflow-support → spill-over and applied; then the rename is reverted (git
    revert): overflow-support is the same record again, under its own id."""
    rows = scenario.rows()
    renamed_id = scenario.id("Queue/overflow-support")
    ledger = ledger_of(scenario, {"Queue/spill-over": (renamed_id, "created")})
    built = scenario.build(rows, ledger=ledger)
    back = by_address(built)["Queue/overflow-support"]
    assert (back.action, back.id, back.renamed_from) == (
        Action.NOOP,
        renamed_id,
        "Queue/spill-over",
    )
    listed = {e.id: e.address for e in ownership.entries(built.changes)}
    assert listed[renamed_id] == "Queue/overflow-support"  # its entry moves back


def test_two_manifests_naming_one_row_is_a_conflict(scenario):
    rows = scenario.rows()
    taken = scenario.id("Queue/vip-support")
    scenario.manifests.append(manifest("Queue", "vip-alias", priority=2))
    scenario.find("Queue", "vip-alias")["metadata"]["id"] = taken
    built = scenario.build(rows)
    assert by_address(built)["Queue/vip-support"].action is Action.NOOP  # the first to claim it
    assert by_address(built)["Queue/vip-alias"].action is Action.CONFLICT
    assert by_address(built)["Queue/vip-alias"].reason == (
        f"its id ({taken}) is Queue/vip-support's too; one record cannot be two: fix the "
        "metadata.id of one of them"
    )


def test_a_ledger_entry_whose_id_its_address_does_not_derive_is_named_as_the_target_names_it(
    scenario,
):
    """A line added to the ledger by hand (or a record renamed since): --prune shows the row's
    own name and id, not only the address the ledger gives; an entry of another table is not
    the row's at all."""
    rows = scenario.rows()
    payments = {**scenario.row(rows, "Queue", "Queue/overflow-support"), "queueid": foreign(7)}
    payments["name"] = "Payments escalations"
    elsewhere = {**payments, "queueid": foreign(8), "name": "Elsewhere"}
    rows["Queue"] += [payments, elsewhere]
    ledger = ledger_of(scenario, {"Queue/old-callback": (foreign(7), "created")})
    ledger.pages[0].entries[foreign(8)] = Entry(
        "FacebookAccount/x", "msdyn_ocfbapplication", foreign(8), "created"
    )
    built = scenario.build(rows, prune=True, ledger=ledger)
    delete = changing(built)["Queue/old-callback"]
    assert (delete.action, delete.current_name, delete.adopted) == (
        Action.DELETE,
        "Payments escalations",
        False,
    )
    assert (
        render_text(plan_of(built)).count(
            f'! deletes Queue "Payments escalations" (id {foreign(7)}), whose id is not derived '
            "from Queue/old-callback (renamed since, or listed in the ledger by hand)"
        )
        == 1
    )
    assert foreign(8) not in {c.id for c in built.changes}  # not ours: left alone
    assert built.unmanaged["Queue"] >= 1


def test_a_name_clash_with_another_projects_record_says_whose_it_is(scenario):
    rows = scenario.rows(ids={"Queue/vip-support": foreign(9)})
    others = {foreign(9): (OTHER_NAMESPACE, "Queue/premium")}
    built = scenario.build(rows, ledger=Ledger(scenario.namespace, others=others))
    conflict = by_address(built)["Queue/vip-support"]
    assert conflict.action is Action.CONFLICT
    assert conflict.reason == (
        f"a Queue with the name 'VIP support' already exists in the target (id {foreign(9)}) "
        f"and is managed by another project (namespace {OTHER_NAMESPACE}, as Queue/premium); "
        "rename yours"
    )
