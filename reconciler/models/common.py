"""Building blocks shared by every manifest kind: names, secrets, durations, metadata."""

from __future__ import annotations

import re
import uuid
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

API_VERSION = "reconciler.omnichannel/v1"

DISPLAY_NAME_DESCRIPTION = (
    "The record's name in Dynamics 365 (its name column); defaults to metadata.name."
)

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_NAME_RE = re.compile(NAME_PATTERN)
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
_VARIABLE_PATTERN = r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$"


class StrictModel(BaseModel):
    """Manifest models: camelCase keys, unknown keys refused, immutable once built."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        extra="forbid",
        frozen=True,
        str_strip_whitespace=False,
    )


# --- scalars ------------------------------------------------------------------------------


def _bool_from_text(value: Any) -> Any:
    """``true``/``false`` written as text (as a ``${VAR}`` gives them) are booleans too."""
    return {"true": True, "false": False}.get(value, value) if isinstance(value, str) else value


Boolean = Annotated[bool, BeforeValidator(_bool_from_text), Strict()]
"""Only true or false: not yes/no, on/off, 1/0."""


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "must be an integer")
    return value


NotBool = BeforeValidator(_not_bool)
"""Put after any ``Field`` constraints: ``Annotated[int, Field(ge=1), NotBool]`` keeps the
constraints in the JSON Schema. Integers may come as digits (a ``${VAR}`` gives text), but a
boolean is never an integer."""


def _check_name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise PydanticCustomError(
            "invalid-name",
            "must be 1-63 lowercase letters, digits or '-', starting and ending with a "
            "letter or digit",
        )
    return value


Name = Annotated[
    str,
    AfterValidator(_check_name),
    WithJsonSchema({"type": "string", "pattern": NAME_PATTERN}),
]
"""A ``metadata.name``, and every reference to one."""


DIGITS_MAX_LENGTH = 100


def _check_digits(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        raise PydanticCustomError("invalid-digits", "must be a string of digits")
    if len(value) > DIGITS_MAX_LENGTH:
        raise PydanticCustomError(
            "string-too-long",
            "must be at most {max_length} characters",
            {"max_length": DIGITS_MAX_LENGTH},
        )
    return value


Digits = Annotated[
    str,
    BeforeValidator(_check_digits),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": "^[0-9]+$", "maxLength": DIGITS_MAX_LENGTH},
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": _VARIABLE_PATTERN},
            ]
        }
    ),
]
"""A numeric id (Facebook app or page id). Unquoted YAML integers are accepted."""


# --- durations ----------------------------------------------------------------------------

_DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")
DURATION_PATTERN = r"^(?=\d)(\d+d)?(\d+h)?(\d+m)?$"


def parse_duration(value: Any) -> int:
    """``30m``, ``12h``, ``2d`` or a combination (``1d12h``) → minutes."""
    match = _DURATION_RE.match(value) if isinstance(value, str) else None
    if not match or not value:
        raise PydanticCustomError("invalid-duration", "is not a duration (e.g. 30m, 12h, 2d)")
    days, hours, minutes = (int(group or 0) for group in match.groups())
    total = days * 1440 + hours * 60 + minutes
    if total <= 0:
        raise PydanticCustomError("invalid-duration", "must be a duration longer than zero")
    return total


def format_duration(minutes: int) -> str:
    """Minutes in their shortest exact unit: 2880 → ``2d``, 90 → ``90m``."""
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


Minutes = Annotated[
    int,
    BeforeValidator(parse_duration),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "examples": ["30m", "2d"]}),
]


# --- secrets ------------------------------------------------------------------------------


class FromEnv(StrictModel):
    """A secret read from an environment variable when a plan or apply needs it."""

    from_env: Annotated[
        str,
        Field(
            pattern=ENV_NAME_PATTERN,
            description="The environment variable holding the secret, read when a plan or "
            "apply needs it; never a credential variable of the reconciler or the CI system.",
        ),
    ]

    @model_validator(mode="before")
    @classmethod
    def _not_both(cls, value: Any) -> Any:
        if isinstance(value, dict) and "fromFile" in value:
            raise PydanticCustomError(
                "secret-reference", "a secret takes either fromEnv or fromFile, not both"
            )
        return value


class FromFile(StrictModel):
    """A secret read from a file, relative to the manifest that names it."""

    from_file: Annotated[
        str,
        Field(
            min_length=1,
            description="The file holding the secret, relative to the manifest that names it, "
            "inside the project folder or a RECONCILER_SECRET_DIRS folder.",
        ),
    ]


def _secret_kind(value: Any) -> str | None:
    # Tags are written <like-this> so error locations never mistake them for manifest keys.
    if isinstance(value, dict):
        return "<file>" if "fromFile" in value and "fromEnv" not in value else "<env>"
    if isinstance(value, FromEnv | FromFile):
        return "<env>" if isinstance(value, FromEnv) else "<file>"
    return None


SecretRef = Annotated[
    Annotated[FromEnv, Tag("<env>")] | Annotated[FromFile, Tag("<file>")],
    Discriminator(
        _secret_kind,
        custom_error_type="literal-secret",
        custom_error_message=(
            "a secret must be a reference, {fromEnv: NAME} or {fromFile: path}, never a "
            "literal value (the value is not shown)"
        ),
    ),
]


# --- metadata -----------------------------------------------------------------------------


class Ensure(StrEnum):
    PRESENT = "present"
    ABSENT = "absent"


def _check_uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise PydanticCustomError("invalid-id", "must be a GUID") from None


class Metadata(StrictModel):
    name: Name = Field(
        description="The record's stable key, unique per kind: references use it and the "
        "record id derives from it."
    )
    id: (
        Annotated[str, AfterValidator(_check_uuid), Field(json_schema_extra={"format": "uuid"})]
        | None
    ) = Field(
        default=None,
        description="Adopt the existing record with this GUID instead of the id derived "
        "from the name.",
    )
    previous_names: list[Name] = Field(
        default_factory=list,
        description="Names this record had before (a rename): the record keeps its id and is "
        "updated in place instead of deleted and created again, like Terraform's `moved`.",
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Free key-value notes for people and tools; not written to Dynamics 365.",
    )
    ensure: Ensure = Field(
        default=Ensure.PRESENT,
        description="Set to absent to delete the record (and what belongs to it) if it "
        "exists; spec may then be left out.",
    )


ApiVersion = Literal["reconciler.omnichannel/v1"]
