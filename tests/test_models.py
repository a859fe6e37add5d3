import pytest
from pydantic import ValidationError

from reconciler.models.common import format_duration, parse_duration
from reconciler.models.manifest import FacebookAccountManifest, QueueManifest, WorkstreamManifest
from reconciler.models.routing import AllOf, Leaf, NotOf, RoutingRuleSetSpec

API = "reconciler.omnichannel/v1"


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("30m", 30), ("12h", 720), ("2d", 2880), ("1d12h", 2160), ("1h30m", 90), ("90m", 90)],
)
def test_durations_parse_to_minutes(text, minutes):
    assert parse_duration(text) == minutes


@pytest.mark.parametrize("text", ["", "0m", "2 days", "m", "1.5h", "30", "1m1h", 30])
def test_bad_durations_are_refused(text):
    with pytest.raises(Exception, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("minutes", "text"), [(30, "30m"), (720, "12h"), (2880, "2d"), (90, "90m")]
)
def test_durations_format_in_their_shortest_exact_unit(minutes, text):
    assert format_duration(minutes) == text
    assert parse_duration(text) == minutes


def account(pages):
    return {
        "apiVersion": API,
        "kind": "FacebookAccount",
        "metadata": {"name": "fb"},
        "spec": {"applicationId": 123, "applicationSecret": {"fromEnv": "S"}, "pages": pages},
    }


def test_numeric_ids_accept_unquoted_integers():
    manifest = FacebookAccountManifest.model_validate(account([]))
    assert manifest.spec is not None
    assert manifest.spec.application_id == "123"


def test_secrets_are_references_never_literals():
    page = {"name": "p", "pageId": "1", "accessToken": "EAAB-literal"}
    with pytest.raises(ValidationError) as info:
        FacebookAccountManifest.model_validate(account([page]))
    (err,) = info.value.errors()
    assert err["type"] == "literal-secret"
    assert "EAAB-literal" not in err["msg"]
    file_page = {"name": "p", "pageId": "1", "accessToken": {"fromFile": "token.txt"}}
    manifest = FacebookAccountManifest.model_validate(account([file_page]))
    assert manifest.spec is not None
    assert manifest.spec.pages[0].access_token.model_dump(by_alias=True) == {
        "fromFile": "token.txt"
    }


def test_spec_may_be_omitted_only_when_absent():
    absent = {"apiVersion": API, "kind": "Queue", "metadata": {"name": "q", "ensure": "absent"}}
    assert QueueManifest.model_validate(absent).present is False
    present = {"apiVersion": API, "kind": "Queue", "metadata": {"name": "q"}}
    with pytest.raises(ValidationError, match="missing required field 'spec'"):
        QueueManifest.model_validate(present)


def test_display_name_defaults_to_the_metadata_name():
    queue = {"apiVersion": API, "kind": "Queue", "metadata": {"name": "q"}, "spec": {"priority": 1}}
    assert QueueManifest.model_validate(queue).display_name == "q"
    queue["spec"] = {"priority": 1, "displayName": "Queue Q"}
    assert QueueManifest.model_validate(queue).display_name == "Queue Q"
    assert QueueManifest.model_validate(queue).address == "Queue/q"


def test_conditions_nest():
    spec = RoutingRuleSetSpec.model_validate(
        {
            "workstream": "w",
            "type": "route-to-queue",
            "rules": [
                {
                    "name": "r",
                    "when": {
                        "all": [
                            {"field": "facebook.locale", "op": "in", "value": ["nl_NL", "nl_BE"]},
                            {"not": {"field": "conversation.msdyn_title", "op": "isNull"}},
                        ]
                    },
                    "routeTo": "q",
                }
            ],
        }
    )
    when = spec.rules[0].when
    assert isinstance(when, AllOf)
    assert isinstance(when.all[0], Leaf)
    assert isinstance(when.all[1], NotOf)


@pytest.mark.parametrize(
    ("leaf", "message"),
    [
        ({"field": "facebook.locale", "op": "isNull", "value": "x"}, "takes no value"),
        ({"field": "facebook.locale", "op": "in", "value": "x"}, "non-empty list"),
        ({"field": "facebook.locale", "op": "equals", "value": ["x"]}, "single value"),
        ({"field": "facebook.locale", "op": "equals"}, "single value"),
        ({"field": "conversation.x", "op": "equals", "value": float("inf")}, "inf is not a number"),
        (
            {"field": "conversation.x", "op": "in", "value": [1, float("nan")]},
            "nan is not a number",
        ),
    ],
)
def test_condition_values_must_fit_the_operator(leaf, message):
    rules = [{"name": "r", "when": leaf, "routeTo": "q"}]
    with pytest.raises(ValidationError, match=message):
        RoutingRuleSetSpec.model_validate(
            {"workstream": "w", "type": "route-to-queue", "rules": rules}
        )


def test_classification_values_must_be_finite():
    rules = [{"name": "r", "set": {"Score": float("-inf")}}]
    with pytest.raises(ValidationError, match="-inf is not a number rule XML can hold"):
        RoutingRuleSetSpec.model_validate(
            {"workstream": "w", "type": "classification", "rules": rules}
        )


def queue_with(**spec):
    return {"apiVersion": API, "kind": "Queue", "metadata": {"name": "q"}, "spec": spec}


@pytest.mark.parametrize("priority", [True, False, "high", 1.5, 0])
def test_integers_refuse_booleans_and_words(priority):
    with pytest.raises(ValidationError):
        QueueManifest.model_validate(queue_with(priority=priority))


@pytest.mark.parametrize("spec", [{}, {"priority": None}])
def test_a_queue_may_leave_its_priority_to_the_target(spec):
    manifest = QueueManifest.model_validate(queue_with(**spec))
    assert manifest.spec is not None
    assert manifest.spec.priority is None


def test_integers_accept_digits_as_variables_give_them():
    manifest = QueueManifest.model_validate(queue_with(priority="3"))
    assert manifest.spec is not None
    assert manifest.spec.priority == 3


def workstream_with(**spec):
    base = {
        "channel": "facebook",
        "fallbackQueue": "q",
        "facebook": {"account": "fb", "page": "p", "language": "nl-NL"},
    }
    return {
        "apiVersion": API,
        "kind": "Workstream",
        "metadata": {"name": "w"},
        "spec": base | spec,
    }


@pytest.mark.parametrize("value", ["yes", "no", "on", 1, 0, "True"])
def test_booleans_are_only_true_or_false(value):
    with pytest.raises(ValidationError, match="valid boolean"):
        WorkstreamManifest.model_validate(workstream_with(automatedMessages=value))


@pytest.mark.parametrize(("value", "expected"), [(True, True), ("false", False), ("true", True)])
def test_booleans_accept_true_and_false_also_as_text(value, expected):
    manifest = WorkstreamManifest.model_validate(workstream_with(automatedMessages=value))
    assert manifest.spec is not None
    assert manifest.spec.automated_messages is expected
