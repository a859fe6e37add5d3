"""Column lengths, option values, minimums and query rules as Microsoft's table references and
Web API pages document them (the sources are cited in ``reconciler/dataverse/tables.py`` and
``reconciler/emulator/faults.py``): the emulator takes what a real org takes and refuses what it
refuses."""

from __future__ import annotations

import pytest

from reconciler.dataverse.tables import BY_ENTITY_SET
from reconciler.emulator.faults import LENGTH_EXCEEDED, OUT_OF_RANGE

CONTEXT_VARIABLES = "msdyn_ocliveworkstreamcontextvariables"


@pytest.mark.parametrize(
    ("entity_set", "column", "limit"),
    [
        ("msdyn_decisionrulesets", "msdyn_name", 200),
        ("msdyn_decisionrulesets", "msdyn_description", 500),
        ("msdyn_decisionrulesets", "msdyn_uniquename", 256),
        ("msdyn_decisioncontracts", "msdyn_name", 200),
        ("msdyn_decisioncontracts", "msdyn_uniquename", 256),
        ("msdyn_routingconfigurations", "msdyn_uniquename", 128),
        ("msdyn_routingconfigurationsteps", "msdyn_uniquename", 128),
        (CONTEXT_VARIABLES, "msdyn_name", 100),
        (CONTEXT_VARIABLES, "msdyn_displayname", 100),
    ],
)
def test_documented_lengths(org, entity_set, column, limit):
    assert BY_ENTITY_SET[entity_set].columns[column].max_length == limit

    exact = org.post(entity_set, {column: "x" * limit})
    too_long = org.post(entity_set, {column: "x" * (limit + 1)})

    assert exact.status_code == 204, exact.text
    assert org.error_of(too_long) == (400, LENGTH_EXCEEDED)


@pytest.mark.parametrize(
    ("entity_set", "column", "accepted", "refused"),
    [
        ("queues", "msdyn_assignmentstrategy", [192350003, 192350005], [192350004]),
        ("queues", "msdyn_priority", [1], [0]),
        ("msdyn_liveworkstreams", "msdyn_autocloseafterinactivity", [0, 2880], [-1]),
        ("msdyn_liveworkstreams", "msdyn_direction", [0, 4], [5]),
        ("msdyn_liveworkstreams", "msdyn_mode", [717210000, 717210001], [717210002]),
        (
            "msdyn_decisionrulesets",
            "msdyn_rulesettype",
            [192350000, 192350001, 192350002, 192350003],
            [192350004],
        ),
        ("msdyn_decisionrulesets", "msdyn_authoringmode", [192350000], [192350001]),
        ("msdyn_routingconfigurationsteps", "msdyn_type", [192350001, 192350003], [192350004]),
        ("msdyn_routingconfigurationsteps", "msdyn_steporder", [-1, 0], []),
        # Text, Number, Entity Reference: no boolean option is documented.
        (CONTEXT_VARIABLES, "msdyn_datatype", [192350000, 192350001, 192350100], [192350002]),
    ],
)
def test_documented_values(org, entity_set, column, accepted, refused):
    for value in accepted:
        response = org.post(entity_set, {column: value})
        assert response.status_code == 204, (value, response.text)
    for value in refused:
        assert org.error_of(org.post(entity_set, {column: value})) == (400, OUT_OF_RANGE), value


def test_a_context_variable_hangs_under_its_workstream(org):
    workstream = org.workstream()

    variable = org.create(
        CONTEXT_VARIABLES,
        {
            "msdyn_name": "Segment",
            "msdyn_datatype": 192350000,
            "msdyn_liveworkstreamid@odata.bind": f"/msdyn_liveworkstreams({workstream})",
        },
    )

    row = org.read(CONTEXT_VARIABLES, variable)
    assert row["_msdyn_liveworkstreamid_value"] == workstream
    # The four "(Currently Unused)" flags hold their documented defaults.
    assert (row["msdyn_isdisplayable"], row["msdyn_ismodifiable"]) == (True, True)
    assert (row["msdyn_islist"], row["msdyn_issystemdefined"]) == (False, False)
    listed = org.rows(
        CONTEXT_VARIABLES,
        **{"$filter": f"_msdyn_liveworkstreamid_value eq {workstream}", "$select": "msdyn_name"},
    )
    assert [r["msdyn_name"] for r in listed] == ["Segment"]


def test_top_is_ignored_when_a_page_size_is_preferred(org):
    for number in range(3):
        org.queue(f"Q{number}")
    everything = len(org.rows("queues", **{"$select": "name"}))

    both = org.get(
        "queues",
        params={"$top": "1", "$select": "name"},
        headers={"Prefer": "odata.maxpagesize=2"},
    )
    alone = org.get("queues", params={"$top": "1", "$select": "name"})

    # page-results.md: "If you include both, $top is ignored."
    assert both.status_code == 200
    assert len(both.json()["value"]) == 2
    assert "@odata.nextLink" in both.json()
    assert both.headers["Preference-Applied"] == "odata.maxpagesize=2"
    assert everything > 2
    assert len(alone.json()["value"]) == 1
