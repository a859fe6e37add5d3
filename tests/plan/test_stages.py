"""A plan as the typed steps apply runs (docs/spec.md §5): order, needs, links, requests.

Plans are built from plain ``Change`` values (``change``/``plan_of`` below), and, for the cases
the builder makes on its own (a replaced workstream), from the ``conftest.Scenario``.
"""

from __future__ import annotations

import uuid

import pytest

from reconciler.plan.definition import Action, Change, FieldChange, Plan, PlanTarget, summarise
from reconciler.plan.stages import Op, Step, build_steps, order

WS = "Workstream/facebook-support"
CONTRACT = f"{WS}/contract"
ROUTING = f"{WS}/routing"
RULES = "RoutingRuleSet/facebook-support-routing"
RULES_STEP = f"{RULES}/step"
ACCOUNT = "FacebookAccount/contoso-facebook"
PAGE = f"{ACCOUNT}/Contoso Support"
AGENT = "GoogleBusinessMessagesAccount/contoso-gbm/Contoso Stores"
CHILDREN = {
    "FacebookAccount": "FacebookPage",
    "GoogleBusinessMessagesAccount": "GoogleBusinessMessagesAgent",
    "RoutingRuleSet": "RoutingStep",
}
ETAG = 'W/"41"'


# --- factories --------------------------------------------------------------------------------


def kind_of(address: str) -> str:
    top, _, rest = address.partition("/")
    if "/" not in rest:
        return top  # Queue/q, Workstream/w, RoutingRuleSet/r, FacebookAccount/a
    if top == "Workstream":
        return "DecisionContract" if rest.endswith("/contract") else "RoutingConfiguration"
    return CHILDREN[top]


def change(
    address: str,
    action: Action = Action.CREATE,
    *,
    desired: dict | None = None,
    fields: tuple[str, ...] = (),
    depends_on: tuple[str, ...] = (),
    etag: str | None = ETAG,
) -> Change:
    """A change of ``address``; ``fields`` are the changed paths. Writes get a desired state
    (``{"displayName": ...}`` unless given) and, except creates, the plan-time ETag."""
    if action in (Action.CREATE, Action.UPDATE, Action.REPLACE) and desired is None:
        desired = {"displayName": address.rsplit("/", 1)[1]}
    return Change(
        address=address,
        kind=kind_of(address),
        name=address.split("/", 1)[1],
        action=action,
        reason="test",
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, address)),
        etag=None if action is Action.CREATE else etag,
        fields=tuple(FieldChange(path=p, after=1) for p in fields),
        depends_on=depends_on,
        desired=desired,
    )


def plan_of(*changes: Change) -> Plan:
    return Plan(
        tool_version="0.0.0-test",
        created_at="2024-06-01T12:00:00Z",
        target=PlanTarget(url="local:test.db"),
        summary=summarise(changes),
        changes=changes,
    )


def page(action: Action = Action.CREATE, workstream: str | None = "facebook-support", **kw):
    desired = {"account": "contoso-facebook", "name": "Contoso Support", "workstream": workstream}
    depends = (ACCOUNT, WS) if workstream else (ACCOUNT,)
    kw.setdefault("depends_on", depends)
    return change(PAGE, action, desired=desired, **kw)


def chain(action: Action = Action.CREATE, workstream: str = "facebook-support") -> list[Change]:
    """A workstream's routing chain in plan order: contract, workstream, rule set, routing,
    step."""
    ws = f"Workstream/{workstream}"
    rules = f"RoutingRuleSet/{workstream}-routing"
    return [
        change(f"{ws}/contract", action, desired={"outputs": []}),
        change(ws, action, desired={"displayName": workstream}, depends_on=(f"{ws}/contract",)),
        change(
            rules,
            action,
            desired={"workstream": workstream, "type": "route-to-queue"},
            depends_on=(f"{ws}/contract",),
        ),
        change(f"{ws}/routing", action, desired={"workstream": workstream}, depends_on=(ws,)),
        change(
            f"{rules}/step",
            action,
            desired={"workstream": workstream, "ruleSet": f"{workstream}-routing"},
            depends_on=(rules, f"{ws}/routing"),
        ),
    ]


def keyed(steps: list[Step]) -> dict[str, Step]:
    return {step.key: step for step in steps}


def summary(steps: list[Step]) -> list[tuple[str, tuple[str, ...], tuple[str, ...], bool]]:
    return [(s.key, s.paths, s.needs, s.early) for s in steps]


# --- one step per change ----------------------------------------------------------------------


def test_a_create_writes_the_fields_it_sets_in_the_kinds_order():
    queue = change(
        "Queue/vip-support",
        desired={"priority": 1, "displayName": "VIP", "type": "messaging", "description": None},
    )
    (step,) = build_steps(plan_of(queue))

    assert step.key == "create Queue/vip-support"
    assert step.op is Op.CREATE
    assert step.change is queue
    assert step.address == "Queue/vip-support"
    assert step.paths == ("displayName", "type", "priority", "description")
    assert (step.etag, step.needs, step.early) == (None, (), False)


def test_an_update_writes_the_top_level_fields_it_changes_once_each():
    rule_set = change(
        RULES,
        Action.UPDATE,
        fields=("rules[2].routeTo", "rules[0].name", "displayName", "rules[2].when"),
    )
    (step,) = build_steps(plan_of(rule_set))

    assert (step.key, step.op) == (f"update {RULES}", Op.UPDATE)
    assert step.paths == ("rules", "displayName")
    assert step.etag == ETAG


def test_rules_named_in_paths_are_written_as_the_rules_field():
    """Rule sets diff by rule name (docs/spec.md §5): added, removed, moved and changed rules,
    names with brackets or dots quoted, are all the one ``rules`` field apply writes."""
    rule_set = change(
        RULES,
        Action.UPDATE,
        fields=(
            "rules[VIP customers]",
            'rules["a[b].c"].routeTo',
            "rules[Spread the rest].position",
            "displayName",
        ),
    )
    (step,) = build_steps(plan_of(rule_set))

    assert step.paths == ("rules", "displayName")


def test_a_delete_writes_no_fields_and_keeps_the_etag():
    (step,) = build_steps(plan_of(change("Queue/old", Action.DELETE)))

    assert (step.key, step.op, step.paths, step.etag) == ("delete Queue/old", Op.DELETE, (), ETAG)


def test_noops_and_conflicts_make_no_steps():
    plan = plan_of(
        change("Queue/same", Action.NOOP),
        change("Queue/theirs", Action.CONFLICT),
        change("Queue/gone", Action.NOOP, etag=None),
    )
    assert build_steps(plan) == []


def test_steps_keep_the_plans_order_and_need_the_steps_of_their_dependencies():
    plan = plan_of(
        change("Queue/general-support"),
        change(CONTRACT, Action.NOOP),
        change(WS, Action.UPDATE, fields=("fallbackQueue",), depends_on=("Queue/general-support",)),
        change(ROUTING, desired={"workstream": "facebook-support"}, depends_on=(WS, CONTRACT)),
    )
    assert summary(build_steps(plan)) == [
        ("create Queue/general-support", ("displayName",), (), False),
        (f"update {WS}", ("fallbackQueue",), ("create Queue/general-support",), False),
        # The contract is not written (noop): nothing to wait for.
        (f"create {ROUTING}", ("workstream",), (f"update {WS}",), False),
    ]


def test_keys_are_unique_and_every_need_is_another_step():
    plan = plan_of(
        change("Queue/old", Action.DELETE),
        change(ACCOUNT, desired={"displayName": "fb"}),
        *chain(),
        change("Queue/vip", Action.REPLACE, fields=("type",), depends_on=("Queue/old",)),
        page(),
    )
    steps = build_steps(plan)
    keys = [step.key for step in steps]

    assert len(keys) == len(set(keys))
    for step in steps:
        assert set(step.needs) <= set(keys) - {step.key}, step.key


# --- deletes ----------------------------------------------------------------------------------


def test_deletes_listed_before_any_write_are_early_and_later_ones_are_not():
    plan = plan_of(
        change(f"{ACCOUNT}/old page", Action.DELETE),
        change(ACCOUNT, Action.DELETE, depends_on=(f"{ACCOUNT}/old page",)),
        change("Queue/kept", Action.NOOP),  # a noop does not end the leading deletes
        change(WS, Action.UPDATE, fields=("fallbackQueue",)),
        change("Queue/general-support", Action.DELETE, depends_on=(WS,)),
    )
    assert summary(build_steps(plan)) == [
        (f"delete {ACCOUNT}/old page", (), (), True),
        (f"delete {ACCOUNT}", (), (f"delete {ACCOUNT}/old page",), True),
        (f"update {WS}", ("fallbackQueue",), (), False),
        ("delete Queue/general-support", (), (f"update {WS}",), False),
    ]


def test_a_delete_waits_only_for_dependencies_that_are_steps():
    plan = plan_of(change("Queue/old", Action.DELETE, depends_on=("Workstream/unchanged",)))
    assert build_steps(plan)[0].needs == ()


# --- replace ----------------------------------------------------------------------------------


def test_a_replace_is_a_delete_then_a_create_needing_it():
    plan = plan_of(
        change("Queue/general-support", Action.UPDATE, fields=("priority",)),
        change(
            "Queue/vip",
            Action.REPLACE,
            fields=("type",),
            desired={"displayName": "VIP", "type": "voice"},
            depends_on=("Queue/general-support",),
        ),
    )
    delete, create = build_steps(plan)[1:]

    assert (delete.key, delete.op, delete.paths, delete.etag) == (
        "delete Queue/vip",
        Op.DELETE,
        (),
        ETAG,
    )
    assert delete.needs == ("update Queue/general-support",)
    assert (create.key, create.op, create.etag) == ("create Queue/vip", Op.CREATE, None)
    # A create writes every field, not just the one that forced the replace.
    assert create.paths == ("displayName", "type")
    assert create.needs == ("delete Queue/vip", "update Queue/general-support")
    assert create.change is delete.change


def test_a_replaced_records_delete_may_wait_for_an_update_further_down():
    # The workstream stops pointing at the queue (a restricting fallback) only in its update.
    plan = plan_of(
        change("Queue/general-support", Action.REPLACE, fields=("type",), depends_on=(WS,)),
        change(WS, Action.UPDATE, fields=("fallbackQueue",), depends_on=("Queue/vip",)),
    )
    steps = keyed(build_steps(plan))

    assert steps["delete Queue/general-support"].needs == (f"update {WS}",)
    assert steps["create Queue/general-support"].needs == (
        "delete Queue/general-support",
        f"update {WS}",
    )
    assert steps[f"update {WS}"].needs == ()


def test_steps_that_wait_for_each_other_are_refused():
    plan = plan_of(
        change("Queue/general-support", Action.REPLACE, fields=("type",), depends_on=(WS,)),
        change(WS, Action.UPDATE, fields=("fallbackQueue",), depends_on=("Queue/general-support",)),
    )
    with pytest.raises(ValueError, match="the steps wait for each other in a cycle through"):
        build_steps(plan)


def test_the_delete_of_a_replace_listed_first_is_not_early():
    steps = build_steps(plan_of(change("Queue/vip", Action.REPLACE, fields=("type",))))
    assert [(s.key, s.early) for s in steps] == [
        ("delete Queue/vip", False),
        ("create Queue/vip", False),
    ]


def test_steps_needing_a_replaced_record_wait_for_its_create():
    plan = plan_of(
        change("Queue/general-support", Action.REPLACE, fields=("type",)),
        change(WS, Action.UPDATE, fields=("fallbackQueue",), depends_on=("Queue/general-support",)),
    )
    assert keyed(build_steps(plan))[f"update {WS}"].needs == ("create Queue/general-support",)


# --- links: a channel goes live once its workstream's routing is written ------------------------


def test_a_new_page_on_a_workstream_being_written_is_created_unlinked_then_linked():
    plan = plan_of(change(ACCOUNT, desired={"displayName": "fb"}), *chain(), page())
    steps = keyed(build_steps(plan))

    create, link = steps[f"create {PAGE}"], steps[f"link {PAGE}"]
    assert create.op is Op.CREATE
    assert create.paths == ("account", "name")
    assert create.needs == (f"create {ACCOUNT}",)  # not the workstream
    assert link.op is Op.LINK
    assert link.paths == ("workstream",)
    assert link.etag is None
    assert link.change is create.change
    assert list(steps).index(link.key) == list(steps).index(create.key) + 1


def test_the_link_needs_the_create_and_the_whole_routing_chain():
    other = chain(workstream="other")  # another workstream's chain is not waited for
    plan = plan_of(change(ACCOUNT, desired={"displayName": "fb"}), *chain(), *other, page())
    link = keyed(build_steps(plan))[f"link {PAGE}"]

    assert link.needs == (
        f"create {PAGE}",
        f"create {CONTRACT}",
        f"create {WS}",
        f"create {RULES}",
        f"create {ROUTING}",
        f"create {RULES_STEP}",
    )


def test_the_link_waits_for_chain_updates_and_replaces_too():
    contract, ws, rules, routing, step = chain(Action.NOOP)
    plan = plan_of(
        contract,
        change(WS, Action.REPLACE, fields=("distribution.mode",), desired=ws.desired),
        change(RULES, Action.UPDATE, fields=("rules[0].routeTo",), desired=rules.desired),
        routing,
        change(RULES_STEP, desired=step.desired),
        page(),
    )
    link = keyed(build_steps(plan))[f"link {PAGE}"]
    assert link.needs == (
        f"create {PAGE}",
        f"create {WS}",
        f"update {RULES}",
        f"create {RULES_STEP}",
    )


def test_a_new_page_on_a_workstream_not_being_written_is_one_create():
    plan = plan_of(*chain(Action.NOOP), page(depends_on=(ACCOUNT,)))
    (step,) = build_steps(plan)

    assert step.key == f"create {PAGE}"
    assert step.paths == ("account", "name", "workstream")


def test_a_new_page_without_a_workstream_is_one_create():
    plan = plan_of(*chain(), page(workstream=None))
    assert [s.key for s in build_steps(plan)][-1:] == [f"create {PAGE}"]
    assert f"link {PAGE}" not in keyed(build_steps(plan))


def test_a_new_gbm_agent_is_linked_the_same_way():
    agent = change(
        AGENT,
        desired={"name": "Contoso Stores", "workstream": "gbm-stores"},
        depends_on=("Workstream/gbm-stores",),
    )
    steps = keyed(build_steps(plan_of(*chain(workstream="gbm-stores"), agent)))

    assert steps[f"create {AGENT}"].paths == ("name",)
    assert steps[f"link {AGENT}"].needs[:2] == (
        f"create {AGENT}",
        "create Workstream/gbm-stores/contract",
    )


def test_other_kinds_with_a_workstream_field_are_never_split():
    (*_, step) = build_steps(plan_of(*chain()))
    assert (step.key, step.op) == (f"create {RULES_STEP}", Op.CREATE)
    assert "workstream" in step.paths


def test_a_page_update_of_only_its_workstream_is_a_link_needing_the_chain():
    plan = plan_of(*chain(), page(Action.UPDATE, fields=("workstream",)))
    step = keyed(build_steps(plan))[f"link {PAGE}"]

    assert (step.op, step.paths, step.etag) == (Op.LINK, ("workstream",), ETAG)
    assert step.needs == (
        f"create {WS}",
        f"create {CONTRACT}",
        f"create {RULES}",
        f"create {ROUTING}",
        f"create {RULES_STEP}",
    )


def test_a_link_update_on_a_workstream_not_being_written_needs_only_its_dependencies():
    plan = plan_of(
        change(ACCOUNT, Action.UPDATE, fields=("displayName",)),
        *chain(Action.NOOP),
        page(Action.UPDATE, fields=("workstream",)),
    )
    step = keyed(build_steps(plan))[f"link {PAGE}"]
    assert step.needs == (f"update {ACCOUNT}",)


def test_a_page_update_of_its_workstream_and_more_is_an_update_needing_the_chain():
    plan = plan_of(*chain(), page(Action.UPDATE, fields=("name", "workstream")))
    step = keyed(build_steps(plan))[f"update {PAGE}"]

    assert (step.op, step.paths) == (Op.UPDATE, ("name", "workstream"))
    assert f"create {RULES_STEP}" in step.needs
    assert f"create {ROUTING}" in step.needs


def test_a_page_update_not_touching_its_workstream_does_not_wait_for_the_chain():
    plan = plan_of(*chain(), page(Action.UPDATE, fields=("name",), depends_on=(ACCOUNT,)))
    step = keyed(build_steps(plan))[f"update {PAGE}"]
    assert (step.op, step.needs) == (Op.UPDATE, ())


def test_a_replaced_page_is_deleted_created_unlinked_and_linked():
    plan = plan_of(*chain(), page(Action.REPLACE, fields=("pageId",)))
    steps = build_steps(plan)[-3:]

    assert [(s.key, s.op) for s in steps] == [
        (f"delete {PAGE}", Op.DELETE),
        (f"create {PAGE}", Op.CREATE),
        (f"link {PAGE}", Op.LINK),
    ]
    assert steps[1].needs == (f"delete {PAGE}",)
    assert steps[2].needs[0] == f"create {PAGE}"


def test_the_link_after_a_replace_only_requires_the_new_record_to_exist():
    plan = plan_of(*chain(), page(Action.REPLACE, fields=("pageId",)))
    link = build_steps(plan)[-1]

    assert link.key == f"link {PAGE}"
    assert link.request()[2] == {"If-Match": "*"}


# --- the request each step sends ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "op", "expected"),
    [
        (change("Queue/q"), Op.CREATE, ("PATCH", {"If-None-Match": "*"})),
        (
            change("Queue/q", Action.UPDATE, fields=("priority",)),
            Op.UPDATE,
            ("PATCH", {"If-Match": ETAG}),
        ),
        (
            change("Queue/q", Action.UPDATE, fields=("priority",), etag=None),
            Op.UPDATE,
            ("PATCH", {"If-Match": "*"}),
        ),
        (change("Queue/q", Action.DELETE), Op.DELETE, ("DELETE", {"If-Match": ETAG})),
    ],
)
def test_the_request_of_each_step(item, op, expected):
    (step,) = build_steps(plan_of(item))
    method, path, headers = step.request()

    assert step.op is op
    assert (method, headers) == expected
    assert path == f"queues({item.id})"


def test_a_delete_without_an_etag_sends_no_condition():
    item = change("Queue/q", Action.DELETE, etag=None)
    (step,) = build_steps(plan_of(item))
    assert step.request() == ("DELETE", f"queues({item.id})", {})


def test_a_link_after_a_create_only_requires_the_record_to_exist():
    steps = keyed(build_steps(plan_of(*chain(), page())))
    create, link = steps[f"create {PAGE}"], steps[f"link {PAGE}"]
    path = f"msdyn_ocfbpages({create.change.id})"

    assert create.request() == ("PATCH", path, {"If-None-Match": "*"})
    assert link.request() == ("PATCH", path, {"If-Match": "*"})


def test_steps_name_the_table_of_their_kind():
    steps = build_steps(plan_of(*chain(), page()))
    tables = {s.key: s.table.entity_set for s in steps}

    assert tables[f"create {WS}"] == "msdyn_liveworkstreams"
    assert tables[f"link {PAGE}"] == tables[f"create {PAGE}"]
    for step in steps:
        assert step.request()[1] == f"{step.table.entity_set}({step.change.id})"


# --- plans the builder makes ------------------------------------------------------------------


def built_plan(built) -> Plan:
    return plan_of(*built.changes)


def test_a_new_project_links_its_page_after_the_routing_chain(scenario):
    steps = keyed(build_steps(built_plan(scenario.build({}))))
    link = steps[f"link {PAGE}"]

    assert set(link.needs) == {
        f"create {PAGE}",
        f"create {CONTRACT}",
        f"create {WS}",
        "create RoutingRuleSet/facebook-support-classification",
        "create RoutingRuleSet/facebook-support-routing",
        f"create {ROUTING}",
        "create RoutingRuleSet/facebook-support-classification/step",
        "create RoutingRuleSet/facebook-support-routing/step",
    }
    assert "workstream" not in steps[f"create {PAGE}"].paths
    assert "accessToken" in steps[f"create {PAGE}"].paths
    # The page with no workstream is created in one go.
    assert f"link {ACCOUNT}/Contoso Deals" not in steps


def test_a_replaced_workstream_unlinks_its_page_first_and_links_it_once_rebuilt(scenario):
    rows = scenario.rows()
    scenario.spec("Workstream", "facebook-support")["distribution"]["mode"] = "pick"
    steps = keyed(build_steps(built_plan(scenario.build(rows))))

    # The page's link to its workstream is restrict: the page lets go first, as read.
    unlink = steps[f"unlink {PAGE}"]
    assert (unlink.op, unlink.paths, unlink.clears, unlink.needs) == (
        Op.UPDATE,
        ("workstream",),
        True,
        (),
    )
    assert unlink.request()[2] == {"If-Match": 'W/"1"'}
    # … only while the workstream is as read (its replace would be stale otherwise).
    assert [(g.address, g.etag) for g in unlink.guards] == [(WS, 'W/"1"')]
    assert steps[f"delete {WS}"].early is False
    assert steps[f"delete {WS}"].request()[2] == {"If-Match": 'W/"1"'}
    assert steps[f"delete {WS}"].needs == (f"unlink {PAGE}",)
    assert steps[f"create {WS}"].needs == (f"delete {WS}", f"unlink {PAGE}")
    # The routing configuration survives with its link cleared: set again, whatever its ETag.
    routing = steps[f"update {ROUTING}"]
    assert (routing.paths, routing.needs, routing.etag) == (
        ("workstream",),
        (f"create {WS}",),
        None,
    )
    link = steps[f"link {PAGE}"]
    # The unlink changed the page's ETag before the link is written.
    assert link.etag is None
    assert link.request()[2] == {"If-Match": "*"}
    assert set(link.needs) == {f"create {WS}", f"update {ROUTING}"}
    assert not link.clears


def test_an_unlinked_page_with_other_changes_is_written_whole_after_the_replace():
    ws = change(WS, Action.REPLACE, fields=("distribution.mode",), depends_on=(PAGE,))
    page_update = page(Action.UPDATE, fields=("workstream", "facebook.language"), depends_on=(WS,))
    steps = keyed(build_steps(plan_of(ws, page_update)))

    assert steps[f"unlink {PAGE}"].paths == ("workstream",)
    assert steps[f"unlink {PAGE}"].etag == ETAG
    update = steps[f"update {PAGE}"]
    assert (update.paths, update.etag, update.needs) == (
        ("workstream", "facebook.language"),
        None,
        (f"create {WS}",),
    )
    assert steps[f"delete {WS}"].needs == (f"unlink {PAGE}",)


def test_an_update_pointing_a_replaced_record_elsewhere_needs_no_unlink():
    ws = change(WS, Action.REPLACE, fields=("distribution.mode",), depends_on=(PAGE,))
    moved = page(Action.UPDATE, workstream="other", fields=("workstream",), depends_on=())
    steps = keyed(build_steps(plan_of(ws, moved)))

    assert f"unlink {PAGE}" not in steps
    assert steps[f"delete {WS}"].needs == (f"link {PAGE}",)
    assert steps[f"link {PAGE}"].etag == ETAG


def test_an_early_delete_needing_a_later_step_is_refused():
    early = Step(
        "delete Queue/a",
        Op.DELETE,
        change("Queue/a", Action.DELETE),
        (),
        None,
        ("update Queue/b",),
        True,
    )
    later = Step("update Queue/b", Op.UPDATE, change("Queue/b", Action.UPDATE), (), None, ())
    with pytest.raises(ValueError, match="cycle"):
        order([early, later])
