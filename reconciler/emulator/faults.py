"""Dataverse-shaped error answers, and the error codes the emulator uses.

Codes come from ``docs/domain.md`` §4 where it names them; the rest are marked UNCONFIRMED.
"""

from __future__ import annotations

NOT_FOUND = "0x80040217"
DUPLICATE_RECORD = "0x80040237"
DUPLICATE_KEY = "0x80060892"
VERSION_MISMATCH = "0x80060882"
QUERY_ERROR = "0x80060888"  # UNCONFIRMED: unknown property / unsupported query option
PAYLOAD_ERROR = "0x80048d19"  # UNCONFIRMED: "Error identified in Payload provided by the user"
LENGTH_EXCEEDED = "0x80044331"  # UNCONFIRMED
OUT_OF_RANGE = "0x8004431a"  # UNCONFIRMED: option value or number outside the valid range
INVALID_ARGUMENT = "0x80040203"  # UNCONFIRMED: e.g. statecode on create, create-only change
RESTRICTED_DELETE = "0x80040227"  # UNCONFIRMED: referenced by a restrict relationship
UNAUTHORIZED = "0x80072560"  # UNCONFIRMED
THROTTLED_REQUESTS = "0x80072322"
THROTTLED_TIME = "0x80072321"
THROTTLED_CONCURRENCY = "0x80072326"
UNAVAILABLE = "0x80040216"  # UNCONFIRMED: generic "unexpected error" used for injected 503s


class EmulatorError(Exception):
    """An answer other than success: status, Dataverse code and message."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        return {"error": {"code": self.code, "message": self.message}}


def bad_request(code: str, message: str) -> EmulatorError:
    return EmulatorError(400, code, message)


def not_found(entity: str, record_id: str) -> EmulatorError:
    return EmulatorError(404, NOT_FOUND, f"{entity} With Id = {record_id} Does Not Exist")
