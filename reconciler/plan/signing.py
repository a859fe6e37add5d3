"""The plan-signing key: ``RECONCILER_PLAN_KEY`` (docs/security.md).

A saved plan's checksum catches accidents (a truncated download, a stray edit): anyone can
recompute it. A signature catches tampering: an HMAC-SHA256 over the whole plan under a key
only the pipeline holds. With the key set, ``plan`` signs what it writes and ``apply --plan``
refuses any plan the key did not sign, exactly as written.
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.errors import UsageError

PLAN_KEY_VARIABLE = "RECONCILER_PLAN_KEY"
# 32 characters of a random secret (e.g. ``secrets.token_urlsafe(32)``, 43 characters) give a
# 256-bit key, the size of the HMAC-SHA256 output (RFC 2104 §3: less than that weakens it).
MIN_KEY_LENGTH = 32


def plan_key(environ: Mapping[str, str]) -> bytes | None:
    """The signing key ``RECONCILER_PLAN_KEY`` gives, or ``None`` when it is not set; a key too
    short to be a secret is an error (its value is never shown)."""
    text = environ.get(PLAN_KEY_VARIABLE, "").strip()
    if not text:
        return None
    if len(text) < MIN_KEY_LENGTH:
        raise UsageError(
            f"{PLAN_KEY_VARIABLE} is {len(text)} characters long; use a random secret of at "
            f"least {MIN_KEY_LENGTH} (e.g. python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(48))')"
        )
    return text.encode("utf-8")
