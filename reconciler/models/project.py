"""The project file ``reconciler.yaml``: namespace, safety, policy and environments."""

from __future__ import annotations

import re
import uuid
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from reconciler.models.common import NotBool, StrictModel

# The namespace used when a project does not choose one; never change it, ids derive from it.
DEFAULT_NAMESPACE = uuid.UUID("6f1d3c0e-8a4b-5c2d-9e7f-0a1b2c3d4e5f")

TARGET_PATTERN = r"^(local(:.+)?|https?://[^\s/]+(/.*)?)$"
_TARGET_RE = re.compile(TARGET_PATTERN)
VARIABLE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


def _check_target(value: str) -> str:
    if not _TARGET_RE.match(value):
        raise PydanticCustomError(
            "invalid-target",
            "must be local, local:PATH, http://HOST:PORT or https://ORG.crmN.dynamics.com",
        )
    return value


Target = Annotated[
    str,
    AfterValidator(_check_target),
    WithJsonSchema({"type": "string", "pattern": TARGET_PATTERN}),
]
VariableName = Annotated[str, Field(pattern=VARIABLE_NAME_PATTERN)]


class RetiredChannelPolicy(StrEnum):
    WARN = "warn"
    ERROR = "error"


class Safety(StrictModel):
    max_delete_percent: Annotated[int, Field(ge=0, le=100), NotBool] = Field(
        default=30,
        description="Refuse pruning more than this share of managed records (when ≥ 10 exist).",
    )


class Policy(StrictModel):
    retired_channels: RetiredChannelPolicy = Field(
        default=RetiredChannelPolicy.WARN,
        description="What validate does with manifests for a retired channel (Google's "
        "Business Messages): warn, or error to refuse them (exit code 3).",
    )


class Environment(StrictModel):
    target: Target | None = Field(
        default=None,
        description="Where this environment's records live: local, local:PATH, "
        "http://HOST:PORT (a served emulator) or https://ORG.crmN.dynamics.com; --target and "
        "RECONCILER_TARGET take precedence.",
    )
    vars: dict[VariableName, str | int | float | bool] = Field(
        default_factory=dict,
        description="Values for ${NAME} in manifests; --var-file and --var override them.",
    )


class Project(StrictModel):
    namespace: uuid.UUID = Field(
        default=DEFAULT_NAMESPACE,
        description="The UUID record ids are derived from; never change it once applied.",
    )
    safety: Safety = Field(default_factory=Safety, description="Limits on deletes.")
    policy: Policy = Field(default_factory=Policy, description="What validate refuses.")
    environments: dict[
        Annotated[str, Field(pattern=r"^[A-Za-z0-9][-A-Za-z0-9_]*$")], Environment
    ] = Field(
        default_factory=dict,
        description="Named environments, each with its target and variables; --env NAME picks one.",
    )
