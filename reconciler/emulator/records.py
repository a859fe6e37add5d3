"""Rows in and out: validate a write body as Dataverse does, and shape a row for reading.

Messages name columns and tables, never values: a value may be a channel secret.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.dataverse.tables import (
    BY_ENTITY_SET,
    STATUS_FOR_STATE,
    TABLES,
    Column,
    Table,
    Type,
)
from reconciler.emulator.faults import (
    INVALID_ARGUMENT,
    LENGTH_EXCEEDED,
    OUT_OF_RANGE,
    PAYLOAD_ERROR,
    EmulatorError,
    bad_request,
    invalid_property,
)
from reconciler.emulator.odata import INT32_MAX, INT32_MIN

_BIND = re.compile(r"^(?:.*/)?(?P<set>[A-Za-z_][A-Za-z0-9_]*)\((?P<id>[0-9a-fA-F-]{36})\)$")


def normalise_guid(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except (ValueError, AttributeError, TypeError):
        return None


def parse_reference(value: Any) -> tuple[str, str] | None:
    """The (entity set, GUID) a record's URL names: absolute
    (``http://host/api/data/v9.2/queues(<id>)``), ``/queues(<id>)`` or ``queues(<id>)``."""
    match = _BIND.match(value) if isinstance(value, str) else None
    record_id = normalise_guid(match["id"]) if match is not None else None
    return None if match is None or record_id is None else (match["set"], record_id)


def etag(row: Mapping[str, Any]) -> str:
    return f'W/"{row["versionnumber"]}"'


@dataclass
class Write:
    """A checked write body: column values (lookups included) and the lookups to verify."""

    values: dict[str, Any] = field(default_factory=dict)
    binds: dict[str, tuple[Table, str]] = field(default_factory=dict)


def _payload(message: str) -> EmulatorError:
    return bad_request(PAYLOAD_ERROR, message)


def _check_value(table: Table, column: Column, value: Any) -> Any:
    if value is None:
        return None

    def wrong_type(expected: str) -> EmulatorError:
        return _payload(
            f"Cannot convert the value of property '{column.name}' to the expected type "
            f"'{expected}'."
        )

    if column.type in (Type.STRING, Type.MEMO, Type.DATETIME):
        if not isinstance(value, str):
            raise wrong_type("Edm.String")
        if column.max_length is not None and len(value) > column.max_length:
            raise bad_request(
                LENGTH_EXCEEDED,
                f"A validation error occurred. The length of the '{column.name}' attribute of "
                f"the '{table.logical_name}' entity exceeded the maximum allowed length of "
                f"'{column.max_length}'.",
            )
        return value
    if column.type is Type.BOOL:
        if not isinstance(value, bool):
            raise wrong_type("Edm.Boolean")
        return value
    if column.type in (Type.INT, Type.CHOICE):
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not INT32_MIN <= value <= INT32_MAX
        ):
            raise wrong_type("Edm.Int32")
        too_low = column.minimum is not None and value < column.minimum
        too_high = column.maximum is not None and value > column.maximum
        if too_low or too_high or (column.options and value not in column.options):
            raise bad_request(
                OUT_OF_RANGE,
                f"A validation error occurred. The value {value} of '{column.name}' on record "
                f"of type '{table.logical_name}' is outside the valid range.",
            )
        return value
    if column.type is Type.CHOICES:
        if not isinstance(value, str):
            raise wrong_type("Edm.String")
        parts = [p.strip() for p in value.split(",")] if value else []
        if any(not p.isdigit() or int(p) not in column.options for p in parts):
            raise bad_request(
                OUT_OF_RANGE,
                f"A validation error occurred. A value of '{column.name}' on record of type "
                f"'{table.logical_name}' is outside the valid range.",
            )
        return ",".join(parts)
    raise wrong_type(column.type.value)  # GUID columns other than the key are not writable


def _bind(table: Table, key: str, value: Any) -> tuple[Column, tuple[Table, str] | None]:
    navigation = key[: -len("@odata.bind")]
    column = table.by_navigation(navigation)
    if column is None:
        raise _payload(
            f"An undeclared property '{navigation}' which only has property annotations in the "
            "payload but no property value was found in the payload. Navigation property names "
            "are case-sensitive."
        )
    if value is None:
        return column, None
    match = _BIND.match(value) if isinstance(value, str) else None
    target = TABLES[str(column.target)]
    if match is None or BY_ENTITY_SET.get(match["set"]) is not target:
        raise _payload(
            f"The value of '{key}' must be a reference like '/{target.entity_set}(<guid>)'."
        )
    record_id = normalise_guid(match["id"])
    if record_id is None:
        raise _payload(f"The value of '{key}' does not hold a valid GUID.")
    return column, (target, record_id)


def check_write(
    table: Table,
    body: Any,
    *,
    record_id: str | None,
    existing: Mapping[str, Any] | None,
) -> Write:
    """Check a POST/PATCH body. ``existing`` is the stored row for updates, None for creates."""
    if not isinstance(body, dict):
        raise _payload("The request body must be a JSON object.")
    write = Write()
    for key, value in body.items():
        if key.endswith("@odata.bind"):
            column, reference = _bind(table, key, value)
            write.values[column.name] = None if reference is None else reference[1]
            if reference is not None:
                write.binds[column.name] = reference
            continue
        if key.startswith("@"):  # instance annotations such as @odata.type or @odata.etag
            continue
        found = table.columns.get(key)
        if found is None or found.type is Type.LOOKUP:
            raise invalid_property(table.logical_name, key)
        column = found
        if key == table.primary_key:
            given = normalise_guid(value) if isinstance(value, str) else None
            if given is None:
                raise _payload(f"The value of '{key}' is not a valid GUID.")
            if record_id is not None and given != record_id:
                raise bad_request(
                    INVALID_ARGUMENT, f"The '{key}' in the body does not match the URL."
                )
            write.values[key] = given
            continue
        if column.output:
            raise _payload(f"The property '{key}' is read-only: the service sets it.")
        write.values[key] = _check_value(table, column, value)
    _check_state(table, write.values, existing)
    if existing is not None:
        for name, value in write.values.items():
            column = table.columns[name]
            if column.create_only and value != existing.get(name):
                raise bad_request(
                    INVALID_ARGUMENT,
                    f"'{name}' of '{table.logical_name}' can only be set when the record is "
                    "created.",
                )
    return write


def _check_state(table: Table, values: dict[str, Any], existing: Mapping[str, Any] | None) -> None:
    for name in ("statecode", "statuscode"):
        if name in values and values[name] is None:
            raise bad_request(OUT_OF_RANGE, f"{name} of '{table.logical_name}' cannot be null.")
    state, status = values.get("statecode"), values.get("statuscode")
    if existing is None:
        if "statecode" in values:
            raise bad_request(
                INVALID_ARGUMENT,
                f"statecode is not valid on create of '{table.logical_name}': create the record, "
                "then update statecode together with statuscode.",
            )
        if status not in (None, STATUS_FOR_STATE[0]):
            raise bad_request(
                OUT_OF_RANGE, f"statuscode {status} is not valid for a new active record."
            )
        return
    if state is not None and status is None:
        values["statuscode"] = STATUS_FOR_STATE[state]
    elif status is not None and state is None:
        values["statecode"] = next(s for s, v in STATUS_FOR_STATE.items() if v == status)
    elif state is not None and STATUS_FOR_STATE[state] != status:
        raise bad_request(OUT_OF_RANGE, f"statuscode {status} is not valid for statecode {state}.")


def new_row(table: Table, record_id: str, values: Mapping[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {c.name: c.default for c in table.columns.values()}
    row.update(values)
    row[table.primary_key] = record_id
    return row


def shape(table: Table, row: Mapping[str, Any], select: Sequence[Column] | None) -> dict[str, Any]:
    """A row as the Web API returns it: ``@odata.etag``, key, selected columns, ``_x_value``."""
    columns: Sequence[Column] = (
        list(table.columns.values())
        if select is None
        else [table.columns[table.primary_key], *select]
    )
    out: dict[str, Any] = {"@odata.etag": etag(row)}
    for column in columns:
        out[column.read_name] = row.get(column.name)
    return out
