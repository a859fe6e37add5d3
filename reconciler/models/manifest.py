"""The document envelope (apiVersion, kind, metadata, spec) and the registry of kinds."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from reconciler.models.accounts import FacebookAccountSpec, GoogleBusinessMessagesAccountSpec
from reconciler.models.automated import AutomatedMessageSpec
from reconciler.models.capacity import CapacityProfileSpec
from reconciler.models.common import ApiVersion, Ensure, Metadata
from reconciler.models.queue import QueueSpec
from reconciler.models.routing import RoutingRuleSetSpec
from reconciler.models.workstream import WorkstreamSpec

KIND_DESCRIPTION = "The kind of record this document describes."
SPEC_DESCRIPTION = (
    "The record's settings, which depend on its kind; only metadata.ensure: absent may leave "
    "it out."
)

_SPEC_REQUIRED_UNLESS_ABSENT: JsonDict = {
    "if": {
        "properties": {
            "metadata": {"properties": {"ensure": {"const": "absent"}}, "required": ["ensure"]}
        }
    },
    "else": {"required": ["spec"]},
}


class _Manifest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        validate_default=True,  # so a left-out spec reaches the check below
        json_schema_extra=_SPEC_REQUIRED_UNLESS_ABSENT,
    )

    KIND: ClassVar[str]
    api_version: ApiVersion = Field(
        alias="apiVersion", description="The manifest format: reconciler.omnichannel/v1."
    )
    metadata: Metadata = Field(description="Which record this is, and whether it should exist.")
    spec: Any = Field(default=None, description=SPEC_DESCRIPTION)

    @field_validator("spec")
    @classmethod
    def _spec_unless_absent(cls, spec: Any, info: ValidationInfo) -> Any:
        metadata = info.data.get("metadata")
        if spec is None and isinstance(metadata, Metadata) and metadata.ensure is Ensure.PRESENT:
            raise PydanticCustomError(
                "missing",
                "missing required field 'spec' ({hint})",
                {"hint": "only 'ensure: absent' may omit it"},
            )
        return spec

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def present(self) -> bool:
        return self.metadata.ensure is Ensure.PRESENT

    @property
    def display_name(self) -> str:
        name = getattr(self.spec, "display_name", None)
        return name if isinstance(name, str) else self.metadata.name

    @property
    def address(self) -> str:
        return f"{self.KIND}/{self.metadata.name}"

    @property
    def previous_addresses(self) -> tuple[str, ...]:
        """``metadata.previousNames`` as addresses, most recent first as written."""
        return tuple(f"{self.KIND}/{name}" for name in self.metadata.previous_names)


class QueueManifest(_Manifest):
    KIND = "Queue"
    kind: Literal["Queue"] = Field(description=KIND_DESCRIPTION)
    spec: QueueSpec | None = Field(default=None, description=SPEC_DESCRIPTION)


class FacebookAccountManifest(_Manifest):
    KIND = "FacebookAccount"
    kind: Literal["FacebookAccount"] = Field(description=KIND_DESCRIPTION)
    spec: FacebookAccountSpec | None = Field(default=None, description=SPEC_DESCRIPTION)


class GoogleBusinessMessagesAccountManifest(_Manifest):
    KIND = "GoogleBusinessMessagesAccount"
    kind: Literal["GoogleBusinessMessagesAccount"] = Field(description=KIND_DESCRIPTION)
    spec: GoogleBusinessMessagesAccountSpec | None = Field(
        default=None, description=SPEC_DESCRIPTION
    )


class CapacityProfileManifest(_Manifest):
    KIND = "CapacityProfile"
    kind: Literal["CapacityProfile"] = Field(description=KIND_DESCRIPTION)
    spec: CapacityProfileSpec | None = Field(default=None, description=SPEC_DESCRIPTION)


class WorkstreamManifest(_Manifest):
    KIND = "Workstream"
    kind: Literal["Workstream"] = Field(description=KIND_DESCRIPTION)
    spec: WorkstreamSpec | None = Field(default=None, description=SPEC_DESCRIPTION)


class RoutingRuleSetManifest(_Manifest):
    KIND = "RoutingRuleSet"
    kind: Literal["RoutingRuleSet"] = Field(description=KIND_DESCRIPTION)
    spec: RoutingRuleSetSpec | None = Field(default=None, description=SPEC_DESCRIPTION)


class AutomatedMessageManifest(_Manifest):
    KIND = "AutomatedMessage"
    kind: Literal["AutomatedMessage"] = Field(description=KIND_DESCRIPTION)
    spec: AutomatedMessageSpec | None = Field(default=None, description=SPEC_DESCRIPTION)


Manifest = (
    QueueManifest
    | FacebookAccountManifest
    | GoogleBusinessMessagesAccountManifest
    | CapacityProfileManifest
    | WorkstreamManifest
    | RoutingRuleSetManifest
    | AutomatedMessageManifest
)

MANIFEST_TYPES: dict[str, type[_Manifest]] = {
    model.KIND: model
    for model in (
        QueueManifest,
        FacebookAccountManifest,
        GoogleBusinessMessagesAccountManifest,
        CapacityProfileManifest,
        WorkstreamManifest,
        RoutingRuleSetManifest,
        AutomatedMessageManifest,
    )
}
"""Kinds in dependency order (docs/spec.md §5)."""

AnyManifest = Annotated[Manifest, Field(discriminator="kind")]
