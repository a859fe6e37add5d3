"""``kind: RoutingRuleSet``: ordered rules with conditions, routing to queues or classifying."""

from __future__ import annotations

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

from reconciler.models import limits
from reconciler.models.common import DISPLAY_NAME_DESCRIPTION, Name, NotBool, StrictModel

# Condition fields by context (docs/domain.md §3).
CONTEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "facebook": ("customerName", "locale", "timezone", "userPageScopedId"),
    "googleBusinessMessages": ("entryPoint", "placeId", "resolvedLocale", "userDeviceLocale"),
}
CONVERSATION_CONTEXT = "conversation"
FIELD_PATTERN = (
    r"^(facebook\.(customerName|locale|timezone|userPageScopedId)"
    r"|googleBusinessMessages\.(entryPoint|placeId|resolvedLocale|userDeviceLocale)"
    r"|conversation\.[A-Za-z_][A-Za-z0-9_]*)$"
)
_FIELD_RE = re.compile(FIELD_PATTERN)


def _check_field(value: str) -> str:
    if not _FIELD_RE.match(value):
        known = [f"{ctx}.{name}" for ctx, names in CONTEXT_FIELDS.items() for name in names]
        raise PydanticCustomError(
            "unknown-condition-field",
            "unknown field; use one of {known}, or conversation.<attribute>",
            {"known": ", ".join(known)},
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


UNARY_OPERATORS = frozenset({Operator.IS_NULL, Operator.IS_NOT_NULL})
LIST_OPERATORS = frozenset({Operator.IN, Operator.NOT_IN})

Scalar = str | int | float | bool


class Leaf(StrictModel):
    field: ConditionField = Field(
        description="What to test: a field of the workstream's channel context, or a "
        "conversation attribute."
    )
    op: Operator = Field(description="How to compare the field with the value.")
    value: Scalar | list[Scalar] | None = Field(
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


class Rule(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=100)] = Field(
        description="The rule's name, unique within the rule set."
    )
    when: Condition = Field(description="The condition work must match for the rule to apply.")
    route_to: RouteTo | None = Field(
        default=None,
        description="Route-to-queue sets (required there): the messaging Queue matching work "
        "goes to, or a percentage split over at most "
        f"{limits.MAX_ALLOCATION_QUEUES} queues.",
    )
    set_: dict[str, Scalar] | None = Field(
        default=None,
        alias="set",
        description="Classification sets (required there, not empty): the output values to "
        "set, by output name.",
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
