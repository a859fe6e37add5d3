"""The record kinds, by the names the pipeline stages use: each is defined by its own module
under ``reconciler.kinds`` (docs/style.md, "A kind is one place"); this module gathers them
and answers the questions every stage asks of any row."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from reconciler.kinds import BY_NAME, BY_TABLE, KINDS, STAGE
from reconciler.kinds.base import LEGACY, RecordKind, Unreadable
from reconciler.kinds.facebook import FACEBOOK_ACCOUNT, FACEBOOK_PAGE
from reconciler.kinds.gbm import CREDENTIAL_FILE_NAME, GBM_ACCOUNT, GBM_AGENT
from reconciler.kinds.queue import ASSIGNMENT, QUEUE, QUEUE_TYPES, VISIBILITY
from reconciler.kinds.routing import (
    AUTHORING_MODE,
    QUEUE_OUTPUT,
    ROUTING_STEP,
    RULE_SET,
    RULE_SET_DECLARATIVE,
    RULE_SET_TYPE_LABELS,
    STEP_TYPES,
    rule_set_type,
)
from reconciler.kinds.workstream import CHANNEL_VALUES as CHANNELS
from reconciler.kinds.workstream import (
    CONTEXT_VARIABLE,
    CONTEXT_VARIABLE_PREFIX,
    CONTRACT,
    CONVERSATION_PERSISTENT,
    DIRECTION_INBOUND,
    DISTRIBUTION,
    MODE_SIMPLIFIED,
    PRESENCES,
    ROUTING_CONFIGURATION,
    VARIABLE_TYPES,
    WORKSTREAM,
)
from reconciler.mapping.fields import Row, lookup

__all__ = [
    "ASSIGNMENT",
    "AUTHORING_MODE",
    "BY_NAME",
    "BY_TABLE",
    "CHANNELS",
    "CONTEXT_VARIABLE",
    "CONTEXT_VARIABLE_PREFIX",
    "CONTRACT",
    "CONVERSATION_PERSISTENT",
    "CREDENTIAL_FILE_NAME",
    "DIRECTION_INBOUND",
    "DISTRIBUTION",
    "FACEBOOK_ACCOUNT",
    "FACEBOOK_PAGE",
    "GBM_ACCOUNT",
    "GBM_AGENT",
    "KINDS",
    "LEGACY",
    "MODE_SIMPLIFIED",
    "PRESENCES",
    "QUEUE",
    "QUEUE_OUTPUT",
    "QUEUE_TYPES",
    "ROUTING_CONFIGURATION",
    "ROUTING_STEP",
    "RULE_SET",
    "RULE_SET_DECLARATIVE",
    "RULE_SET_TYPE_LABELS",
    "STAGE",
    "STEP_TYPES",
    "VARIABLE_TYPES",
    "VISIBILITY",
    "WORKSTREAM",
    "RecordKind",
    "Unreadable",
    "default_value",
    "is_system_row",
    "name_of_row",
    "row_references",
    "rule_set_type",
]


def is_system_row(kind: RecordKind, row: Row) -> bool:
    """Rows every org has and nobody manages (the kind says which: default queues, the
    output contract)."""
    return kind.system(row)


def name_of_row(kind: RecordKind, row: Row) -> str:
    return kind.name_of(row)


def row_references(kind: RecordKind, row: Row) -> Iterator[tuple[str, str]]:
    """(lookup column, referenced id) for every lookup set in ``row``."""
    for column in kind.table.lookups():
        value = row.get(lookup(column.name))
        if isinstance(value, str):
            yield column.name, value


def default_value(kind: RecordKind, path: str) -> Any:
    return kind.field(path).default
