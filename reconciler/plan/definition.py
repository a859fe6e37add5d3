"""The plan: an immutable value with a stable JSON form, a checksum and, when a key is given,
a signature (docs/spec.md §5, docs/security.md).

    Plan
    ├── target           where it was read from (url, organization id)
    ├── summary          how many changes of each action
    ├── changes[]        one per record, in apply order: deletes (reverse dependency order)
    │   └── fields[]     field-level differences in manifest terms (sensitive ones hidden)
    ├── warnings[]       from validation and from the target
    └── follow_up[]      outputs known only after apply (callback URLs, verify tokens)

Field values are JSON values in manifest terms: references by name, languages by locale code,
durations as ``2d``. A sensitive value never appears: ``before``/``after`` are ``null`` and
``sensitive`` is true, with a short fingerprint of the value that will be written.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from reconciler.render import neutral

FORMAT_VERSION = "1"
SAFETY_MIN_MANAGED = 10
"""The delete threshold applies from this many managed records on (docs/spec.md §2)."""


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    ADOPT = "adopt"
    NOOP = "noop"
    CONFLICT = "conflict"


CHANGING = frozenset({Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE, Action.ADOPT})
DESTRUCTIVE = frozenset({Action.REPLACE, Action.DELETE})


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FieldChange(_Value):
    path: str = Field(
        description="Manifest path, e.g. distribution.mode or rules[VIP customers].routeTo "
        '(rules by name; rules[NAME].position for a moved rule; a name holding [ ] . " or \\ '
        "is quoted as a JSON string)."
    )
    before: JsonValue = None
    after: JsonValue = None
    sensitive: bool = False
    fingerprint: str | None = Field(
        default=None,
        description="Sensitive fields: a short fingerprint of the value to be written.",
    )
    source: str | None = Field(
        default=None,
        description="Sensitive fields: where the value is read from (env:NAME or file:PATH).",
    )


class Change(_Value):
    address: str = Field(description="Kind/name, with /child for pages, agents and routing.")
    kind: str
    name: str
    action: Action
    reason: str
    id: str
    etag: str | None = Field(
        default=None,
        description="The ETag read at plan time; null for a row this apply changes before "
        "writing it (a link a delete clears), whose write then only requires that it exists.",
    )
    fields: tuple[FieldChange, ...] = ()
    depends_on: tuple[str, ...] = ()
    desired: dict[str, JsonValue] | None = Field(
        default=None,
        description="Every field the record should have (create, update, replace, adopt), "
        "sensitive ones as null: what apply writes.",
    )
    current_name: str | None = Field(
        default=None,
        description="The record's name as the target holds it, for a record this project did "
        "not create (adopt, and deletes of adopted records).",
    )
    adopted: bool = Field(
        default=False,
        description="The record was not created by this project: it is adopted (metadata.id, "
        "or under an adopted record), or being adopted.",
    )
    renamed_from: str | None = Field(
        default=None,
        description="The address the record had before (metadata.previousNames): it keeps its id.",
    )


class Summary(_Value):
    create: int = 0
    update: int = 0
    replace: int = 0
    delete: int = 0
    adopt: int = 0
    noop: int = 0
    conflict: int = 0

    @property
    def changes(self) -> int:
        """Changes the plan would make (an adoption changes at least the ledger)."""
        return self.create + self.update + self.replace + self.delete + self.adopt


class PlanTarget(_Value):
    url: str
    organization_id: str | None = None

    @property
    def revision(self) -> str | None:
        """``plan --against``: the git revision compared with (``git:REF (commit)`` as url)."""
        return self.url.removeprefix("git:") if self.url.startswith("git:") else None


class Warning(_Value):
    code: str
    message: str
    location: str | None = Field(default=None, description="file:line:column, when known.")
    address: str | None = None


class LedgerEntry(_Value):
    address: str
    table: str
    id: str
    origin: str = Field(description="created or adopted.")


class LedgerPlan(_Value):
    """What apply writes to the ledger (docs/ownership.md) besides what its changes say: every
    change of a record that exists or is created is written to it, every delete removes."""

    namespace: str
    found: bool = Field(
        description="The target held a ledger for this namespace when planned; false: apply "
        "writes a new one (an org applied before ledgers, or a new project)."
    )
    records: int = Field(
        default=0, description="Entries of the ledger whose records the target held."
    )
    add: tuple[LedgerEntry, ...] = Field(
        default=(),
        description="Records no manifest describes that are provably this project's (by their "
        "derived ids) but missing from the ledger: apply lists them.",
    )
    drop: tuple[str, ...] = Field(
        default=(),
        description="Ids of entries whose records are gone from the target: apply drops them.",
    )
    pending: int = Field(
        default=0,
        description="Entries apply adds, changes or drops: 0 when the ledger is up to date.",
    )


class FollowUp(_Value):
    address: str
    output: str = Field(description="e.g. callbackUrl, verifyToken, webhookUrl.")
    message: str


class Plan(_Value):
    format_version: str = FORMAT_VERSION
    tool_version: str
    created_at: str
    target: PlanTarget
    summary: Summary
    changes: tuple[Change, ...] = ()
    warnings: tuple[Warning, ...] = ()
    follow_up: tuple[FollowUp, ...] = ()
    unmanaged: dict[str, int] = Field(
        default_factory=dict,
        description="Records of each kind in the target that this project does not manage.",
    )
    requests: int = Field(default=0, description="Requests made to read the target.")
    managed: int = Field(
        default=0,
        description="Records of this project the target held when planned: the ledger's, and "
        "those provably the project's by their ids.",
    )
    max_delete_percent: int = Field(
        default=30,
        description="safety.maxDeletePercent: apply refuses to delete a larger share of the "
        "managed records (when there are 10 or more) unless forced.",
    )
    ledger: LedgerPlan | None = None
    checksum: str = ""
    signature: str = Field(
        default="",
        description="hmac-sha256:<hex> of everything else in the plan under RECONCILER_PLAN_KEY, "
        "when the plan was written with that key set; empty otherwise.",
    )

    @property
    def has_changes(self) -> bool:
        return self.summary.changes > 0

    @property
    def has_conflicts(self) -> bool:
        return self.summary.conflict > 0

    @property
    def deletes_over_limit(self) -> bool:
        """More deletes than ``safety.maxDeletePercent`` allows (with ≥ 10 managed records)."""
        return (
            self.managed >= SAFETY_MIN_MANAGED
            and self.summary.delete * 100 > self.max_delete_percent * self.managed
        )

    def data(self) -> dict[str, Any]:
        """The JSON form, keys in the order of spec §5."""
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        """``data()`` as indented JSON (UTF-8 text, not escaped), written by pydantic's own
        serializer: the layout of ``json.dumps(indent=2)``, which drops to Python's pure encoder
        when indenting (9 s instead of 0.2 s for a plan of 10,000 creates). Numbers may be
        spelled differently (``1e-7`` for ``1e-07``); they parse to the same values. A CI
        runner's command sequence in a value (``##vso[``) is written escaped (``render.neutral``),
        so the file is safe to print in a CI log and parses to the same plan."""
        return neutral.json_text(self.model_dump_json(indent=2)) + "\n"

    def with_checksum(self) -> Plan:
        return self.model_copy(update={"checksum": self.computed_checksum()})

    def computed_checksum(self) -> str:
        """``compute_checksum(self.data())``, hashed a change at a time: the JSON form of a
        plan of 10,000 creates is 130 MB of objects, this needs one change's worth."""
        digest = hashlib.sha256()
        self._feed(digest.update, _NOT_CHECKSUMMED)
        return "sha256:" + digest.hexdigest()

    def signed(self, key: bytes) -> Plan:
        """This plan with its signature under ``key`` (``RECONCILER_PLAN_KEY``)."""
        return self.model_copy(update={"signature": self.signature_under(key)})

    def signature_under(self, key: bytes) -> str:
        """HMAC-SHA256 (RFC 2104) of the canonical JSON of every field but the signature:
        the target and organization, each change, its ETag, the checksum and the time."""
        mac = hmac.new(key, digestmod=hashlib.sha256)
        self._feed(mac.update, _NOT_SIGNED)
        return SIGNATURE_PREFIX + mac.hexdigest()

    def identity(self, key: bytes | None = None) -> str:
        """What tells this plan from every other: a hash of every field but the signature,
        the time it was made included (two plans of the same changes made at different times
        are two plans). Under ``key`` an HMAC, which nobody without the key can compute (the
        note of applied plans, ``reconciler.state.applied``, stores it)."""
        if key is None:
            digest = hashlib.sha256()
            self._feed(digest.update, _NOT_SIGNED)
            return "sha256:" + digest.hexdigest()
        mac = hmac.new(key, digestmod=hashlib.sha256)
        mac.update(b"reconciler-applied\0")  # never equal to the plan's signature
        self._feed(mac.update, _NOT_SIGNED)
        return "hmac-sha256:" + mac.hexdigest()

    def verified_by(self, key: bytes) -> bool:
        """Whether the plan carries a signature ``key`` made over exactly this content."""
        expected = self.signature_under(key).encode("ascii")
        given = self.signature.encode("utf-8", "replace")  # compared as bytes: any text fails
        return bool(self.signature) and hmac.compare_digest(given, expected)

    def _feed(self, update: Callable[[bytes], object], left_out: tuple[str, ...]) -> None:
        """The canonical JSON (keys sorted, no spaces) of the plan without ``left_out``, fed to
        ``update`` in pieces: the same bytes as ``_CANONICAL.encode`` of ``data()`` would give."""
        encode = _CANONICAL.encode
        keys = sorted(name for name in type(self).model_fields if name not in left_out)
        for index, key in enumerate(keys):
            update(("{" if index == 0 else ",").encode() + f"{encode(key)}:".encode())
            if key == "changes":
                update(b"[")
                for number, change in enumerate(self.changes):
                    text = encode(change.model_dump(mode="json"))
                    update(("," if number else "").encode() + text.encode("utf-8"))
                update(b"]")
            else:
                value = self.model_dump(mode="json", include={key})[key]
                update(encode(value).encode("utf-8"))
        update(b"}")


# Left out of the checksum: when the plan was made and how many reads it took say nothing
# about what it would change.
_NOT_CHECKSUMMED = ("created_at", "requests", "checksum", "signature")
# The signature covers everything else: a signed plan cannot be changed in any byte that means
# something without the key.
_NOT_SIGNED = ("signature",)
SIGNATURE_PREFIX = "hmac-sha256:"


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def compute_checksum(data: dict[str, Any]) -> str:
    """The checksum of a plan's JSON form: SHA-256 of its canonical JSON (keys sorted, no
    spaces) without the fields that say nothing about the changes."""
    content = {key: value for key, value in data.items() if key not in _NOT_CHECKSUMMED}
    return "sha256:" + hashlib.sha256(_CANONICAL.encode(content).encode("utf-8")).hexdigest()


def summarise(changes: tuple[Change, ...]) -> Summary:
    counts = {action.value: 0 for action in Action}
    for change in changes:
        counts[change.action.value] += 1
    return Summary(**counts)
