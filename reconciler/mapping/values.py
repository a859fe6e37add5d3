"""Field values in manifest terms, and the one value that must never be shown: a secret.

A record's fields map manifest paths (``distribution.mode``) to JSON values: references by
name, languages by locale code, durations as ``2d``. Secrets are ``Sensitive``: compared in
memory, shown only as a short fingerprint.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from typing import Any, TypeAlias

Value: TypeAlias = Any
"""A JSON value (None, bool, int, float, str, list, dict) or a ``Sensitive``."""

Fields: TypeAlias = Mapping[str, Value]

_FINGERPRINT_SALT = b"reconciler-secret-fingerprint/v1:"


def fingerprint(value: str) -> str:
    """A short, stable fingerprint: enough to tell two values apart, not to recover one."""
    digest = hashlib.sha256(_FINGERPRINT_SALT + value.encode("utf-8")).hexdigest()
    return f"sha256:{digest[:12]}"


class Sensitive:
    """A secret value. Its repr, str and JSON form never contain the value."""

    __slots__ = ("_value", "fingerprint", "source")

    def __init__(self, value: str, source: str | None = None) -> None:
        self._value = value
        self.fingerprint = fingerprint(value)
        self.source = source
        """Where it was read from: ``env:NAME`` or ``file:PATH`` (never the value)."""

    def reveal(self) -> str:
        """The value, for the one place that writes it to the target."""
        return self._value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sensitive):
            return NotImplemented
        return hmac.compare_digest(self._value.encode("utf-8"), other._value.encode("utf-8"))

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __repr__(self) -> str:
        return f"Sensitive({self.fingerprint})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a Sensitive value cannot be pickled")


@functools.lru_cache(maxsize=1 << 16)
def record_id(namespace: uuid.UUID, key: str) -> str:
    """The id of a record the reconciler creates: ``uuid5(namespace, "<Kind>/<name>")``.

    Computed as RFC 4122 says (SHA-1 of the namespace and the name, version 5, variant bits)
    without building ``UUID`` objects, and remembered: a plan asks for each id several times.
    """
    digest = bytearray(hashlib.sha1(namespace.bytes + key.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Unreadable(str):
    """A field value the target holds in a form manifests cannot say: planning leaves the
    column as it is and says why (the text), export skips the record with the reason."""

    __slots__ = ()


def unknown_id(record_id: str) -> str:
    """How a reference to a record outside the project reads: never a valid manifest name."""
    return f"<{record_id}>"


def json_value(value: Value) -> Any:
    """The value as plain JSON: a secret becomes ``None``."""
    if isinstance(value, Sensitive):
        return None
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    if isinstance(value, dict):
        return {key: json_value(item) for key, item in value.items()}
    return value
