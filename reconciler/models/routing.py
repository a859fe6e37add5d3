"""``kind: RoutingRuleSet``: ordered rules with conditions, routing to queues or classifying."""

from __future__ import annotations

import math
import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from reconciler.mapping import rulegrammar as g
from reconciler.mapping.rulegrammar import CHANNEL_FIELDS
from reconciler.models import limits
from reconciler.models.common import DISPLAY_NAME_DESCRIPTION, Name, NotBool, StrictModel

# Condition fields by channel context (their columns and sources: rulegrammar).
CONTEXT_FIELDS: dict[str, tuple[str, ...]] = {
    context: tuple(fields) for context, fields in CHANNEL_FIELDS.items()
}
CONVERSATION_CONTEXT = "conversation"
VARIABLE_CONTEXT = "context"
IDENTIFIER = g.IDENTIFIER
FIELD_PATTERN = (
    "^("
    + "|".join(f"{ctx}\\.({'|'.join(names)})" for ctx, names in CONTEXT_FIELDS.items())
    + f"|{CONVERSATION_CONTEXT}\\.{IDENTIFIER}|{VARIABLE_CONTEXT}\\.{IDENTIFIER})$"
)
_FIELD_RE = re.compile(FIELD_PATTERN)
OUTPUT_PATTERN = f"^({IDENTIFIER}|{CONVERSATION_CONTEXT}\\.{IDENTIFIER})$"
"""A classification output: a context variable of the workstream, or a conversation attribute."""
VARIABLE_PATTERN = f"^{IDENTIFIER}$"


def _check_field(value: str) -> str:
    if value.startswith("chat."):
        # The chat channel's engagement context (msdyn_livechatengagementctx) is declared in a
        # chat workstream's contract (ALM), but no public source shows a rule reading it.
        raise PydanticCustomError(
            "unknown-condition-field",
            "'{value}': no real org was seen to route on the chat channel's own fields; route "
            "a chat on context.<variable> (what the website sends, or a pre-chat question) or "
            "conversation.<attribute>",
            {"value": value},
        )
    if not _FIELD_RE.match(value):
        known = [f"{ctx}.{name}" for ctx, names in CONTEXT_FIELDS.items() for name in names]
        raise PydanticCustomError(
            "unknown-condition-field",
            "unknown field '{value}'; use one of {known}, context.<variable> or "
            "conversation.<attribute>",
            {"value": value, "known": ", ".join(known)},
        )
    return value


ConditionField = Annotated[
    str, AfterValidator(_check_field), WithJsonSchema({"type": "string", "pattern": FIELD_PATTERN})
]


class Operator(StrEnum):
    EQUALS = "equals"
    NOT_EQUALS = "notEquals"
    CONTAINS = "contains"
    NOT_CONTAINS = "notContains"
    BEGINS_WITH = "beginsWith"
    ENDS_WITH = "endsWith"
    IN = "in"
    NOT_IN = "notIn"
    IS_NULL = "isNull"
    IS_NOT_NULL = "isNotNull"
    GREATER_THAN = "greaterThan"
    LESS_THAN = "lessThan"
    GREATER_OR_EQUAL = "greaterOrEqual"
    LESS_OR_EQUAL = "lessOrEqual"


UNARY_OPERATORS = frozenset(Operator(op) for op in g.UNARY)
LIST_OPERATORS = frozenset(Operator(op) for op in g.LIST_OPERATORS)

Scalar = str | int | float | bool
"""A static value of a rule: written as text (docs/routing-xml.md), so numbers are finite."""


def _finite(values: Any) -> Any:
    for value in values if isinstance(values, list) else [values]:
        if isinstance(value, float) and not math.isfinite(value):
            raise PydanticCustomError(
                "invalid-value", "{value} is not a number rule XML can hold", {"value": value}
            )
    return values


FiniteScalar = Annotated[Scalar, AfterValidator(_finite)]


class Leaf(StrictModel):
    field: ConditionField = Field(
        description="What to test: a field of the workstream's channel context, one of its "
        "context variables (context.<name>), or a conversation attribute (conversation.<name>)."
    )
    op: Operator = Field(
        description="How to compare the field with the value. beginsWith, endsWith, "
        "notContains and isNull (except under not) cannot be written: no real org was seen to "
        "hold their rule XML (docs/routing-xml.md)."
    )
    value: Annotated[Scalar | list[Scalar] | None, AfterValidator(_finite)] = Field(
        default=None,
        description="No value for isNull and isNotNull, a non-empty list for in and notIn, one "
        "value for the others.",
    )

    @model_validator(mode="after")
    def _value_fits_operator(self) -> Leaf:
        if self.op in UNARY_OPERATORS:
            if self.value is not None:
                raise PydanticCustomError(
                    "invalid-condition", "{op} takes no value", {"op": self.op}
                )
        elif self.op in LIST_OPERATORS:
            if not isinstance(self.value, list) or not self.value:
                raise PydanticCustomError(
                    "invalid-condition", "{op} needs a non-empty list as value", {"op": self.op}
                )
        elif self.value is None or isinstance(self.value, list):
            raise PydanticCustomError(
                "invalid-condition", "{op} needs a single value", {"op": self.op}
            )
        return self


class AllOf(StrictModel):
    all: Annotated[list[Condition], Field(min_length=1)] = Field(
        description="Matches when every condition in the list matches."
    )


class AnyOf(StrictModel):
    any: Annotated[list[Condition], Field(min_length=1)] = Field(
        description="Matches when at least one condition in the list matches."
    )


class NotOf(StrictModel):
    not_: Condition = Field(alias="not", description="Matches when this condition does not.")


# Tags name the union members in error locations; they never collide with manifest keys.
_COMBINATORS = {"all": "<all>", "any": "<any>", "not": "<not>"}


def _condition_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        for key, tag in _COMBINATORS.items():
            if key in value:
                return tag
        return "<leaf>"
    if isinstance(value, AllOf | AnyOf | NotOf | Leaf):
        return {AllOf: "<all>", AnyOf: "<any>", NotOf: "<not>", Leaf: "<leaf>"}[type(value)]
    return None


Condition = Annotated[
    Annotated[AllOf, Tag("<all>")]
    | Annotated[AnyOf, Tag("<any>")]
    | Annotated[NotOf, Tag("<not>")]
    | Annotated[Leaf, Tag("<leaf>")],
    Discriminator(
        _condition_kind,
        custom_error_type="invalid-condition",
        custom_error_message=(
            "a condition is a mapping: {all: [...]}, {any: [...]}, {not: ...} or "
            "{field: ..., op: ..., value: ...}"
        ),
    ),
]


class RuleSetType(StrEnum):
    ROUTE_TO_QUEUE = "route-to-queue"
    CLASSIFICATION = "classification"


class Allocation(StrictModel):
    queue: Name = Field(description="A messaging Queue; each queue appears once in a split.")
    percent: Annotated[int, Field(ge=1, le=100), NotBool] = Field(
        description="This queue's share of the matching work; the shares add up to 100."
    )


def _route_kind(value: Any) -> str:
    return "split" if isinstance(value, list) else "queue"


RouteTo = Annotated[
    Annotated[Name, Tag("queue")]
    | Annotated[
        Annotated[
            list[Allocation],
            Field(min_length=1, json_schema_extra={"maxItems": limits.MAX_ALLOCATION_QUEUES}),
        ],
        Tag("split"),
    ],
    Discriminator(_route_kind),
]
"""A queue name, or a percentage split over at most five queues."""


def _check_output(value: str) -> str:
    if not re.match(OUTPUT_PATTERN, value):
        raise PydanticCustomError(
            "unknown-output",
            "unknown output {value!r}: name a context variable of the workstream, or "
            "conversation.<attribute>",
            {"value": value},
        )
    return value


OutputName = Annotated[
    str,
    AfterValidator(_check_output),
    WithJsonSchema({"type": "string", "pattern": OUTPUT_PATTERN}),
]


class Rule(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=100)] = Field(
        description="The rule's name, unique within the rule set."
    )
    when: Condition | None = Field(
        default=None,
        description="The condition work must match for the rule to apply; left out, the rule "
        "always matches.",
    )
    route_to: RouteTo | None = Field(
        default=None,
        description="Route-to-queue sets (required there): the messaging Queue matching work "
        "goes to, or a percentage split over at most "
        f"{limits.MAX_ALLOCATION_QUEUES} queues.",
    )
    set_: dict[OutputName, FiniteScalar] | None = Field(
        default=None,
        alias="set",
        description="Classification sets (required there, not empty): the values to set, by "
        "context variable of the workstream (a bare name) or conversation.<attribute>.",
    )


class RoutingRuleSetSpec(StrictModel):
    """Ordered rules for one workstream's work: route it to queues, or classify it."""

    display_name: Annotated[str, Field(min_length=1, max_length=limits.RULE_SET_NAME)] | None = (
        Field(default=None, description=DISPLAY_NAME_DESCRIPTION)
    )
    workstream: Name = Field(description="The Workstream whose work the rules apply to.")
    type: RuleSetType = Field(
        description="route-to-queue rules send work to queues (routeTo); classification rules "
        f"set output values (set). A workstream has at most {limits.MAX_ROUTE_TO_QUEUE_SETS} "
        f"route-to-queue set and {limits.MAX_CLASSIFICATION_SETS} classification sets; "
        "classification sets run first."
    )
    rules: Annotated[
        list[Rule], Field(json_schema_extra={"maxItems": limits.MAX_RULES_PER_SET})
    ] = Field(
        default_factory=list,
        description="Tried in order; the first match wins. Work that no route-to-queue rule "
        "matches goes to the workstream's fallback queue.",
    )


for _model in (AllOf, AnyOf, NotOf):
    _model.model_rebuild()
