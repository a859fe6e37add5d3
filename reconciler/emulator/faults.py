"""Dataverse-shaped error answers, and the error codes the emulator uses.

Sources: TSHOOT is ``MicrosoftDocs/SupportArticles-docs``
``support/power-platform/dataverse/dataverse-web-api-and-sdk/web-api-client-errors.md``
@0d44799b178bd1415731b5bf5a7597ec4c0162fd; COMPOSE is ``MicrosoftDocs/powerapps-docs``
``powerapps-docs/developer/data-platform/webapi/compose-http-requests-handle-errors.md``
@05cfff5341d4db7cec326318fdd63b9618e9c206; CRMERR is ``microsoft/Dynamics365-Apps-Samples``
``samples-from-msdn/HelperCode/crmerrors.xml`` @656a881ae114963e127e37a6ba2922997a6eb9f0; COND-S
is ``powerapps-docs/developer/data-platform/webapi/web-api-conditional-operations-sample.md``
(ms.date 09/02/2022). Codes no source settled are marked UNCONFIRMED.
"""

from __future__ import annotations

NOT_FOUND = "0x80040217"  # UNCONFIRMED for the current service (COND-S v9.0 shows "")
DUPLICATE_RECORD = "0x80040237"  # COMPOSE 412 DuplicateRecord; CRMERR 80040237
DUPLICATE_KEY = "0x80060892"  # UNCONFIRMED
VERSION_MISMATCH = "0x80060882"  # COND-S: 412 on a stale If-Match
# TSHOOT: an unknown property in a body ("Invalid property 'x' was found in entity …") or in
# $select/$filter ("Could not find a property named 'x' on type …") is 400 with code 0x0.
VALIDATION = "0x0"
RESOURCE_NOT_FOUND = "0x8006088a"  # TSHOOT: 404 "Resource not found for the segment 'X'."
QUERY_ERROR = "0x80060888"  # UNCONFIRMED: other query errors (syntax, unsupported options)
# TSHOOT: "Error identified in Payload provided by the user" (an unknown navigation property);
# UNCONFIRMED for the other payload errors the emulator answers with it.
PAYLOAD_ERROR = "0x80048d19"
LENGTH_EXCEEDED = "0x80044331"  # CRMERR StringLengthTooLong
OUT_OF_RANGE = "0x8004431a"  # CRMERR PicklistValueOutOfRange (used for numbers too: UNCONFIRMED)
INVALID_ARGUMENT = "0x80040203"  # UNCONFIRMED: e.g. statecode on create, create-only change
# COMPOSE: "405 Method Not Allowed … Expect this for … CannotDeleteDueToAssociation";
# CRMERR 80040227 CannotDeleteDueToAssociation.
RESTRICTED_DELETE = "0x80040227"
UNAUTHORIZED = "0x80072560"  # UNCONFIRMED
# LIMITS (powerapps-docs/developer/data-platform/api-limits.md @05cfff53…): 429 codes.
THROTTLED_REQUESTS = "0x80072322"
THROTTLED_TIME = "0x80072321"
THROTTLED_CONCURRENCY = "0x80072326"
UNAVAILABLE = "0x80040216"  # UNCONFIRMED: generic "unexpected error" used for injected 503s
# COMPOSE: "413 Payload Too Large: Expect this status code when the request length is too
# large"; which code its body carries no source settles (UNCONFIRMED: the payload error's).
TOO_LARGE = PAYLOAD_ERROR
# The emulator's own refusal of a request that names another host (``app``): a real org never
# sees one (its front door routes by host), so no Dataverse code applies; COMPOSE says the code
# is "frequently empty".
MISDIRECTED = ""


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


def unknown_property(type_name: str, name: str) -> EmulatorError:
    """A name in ``$select``, ``$filter`` or ``$orderby`` the type lacks (TSHOOT)."""
    return bad_request(
        VALIDATION,
        f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{type_name}'.",
    )


def invalid_property(type_name: str, name: str) -> EmulatorError:
    """A property in a POST/PATCH body the type lacks (TSHOOT; the message as it reads there,
    without the stack trace)."""
    return bad_request(
        VALIDATION,
        "An error occurred while validating input parameters: Microsoft.Crm.CrmException: "
        f"Invalid property '{name}' was found in entity 'Microsoft.Dynamics.CRM.{type_name}'. "
        "---> Microsoft.OData.ODataException: Does not support untyped value in non-open type.",
    )


def resource_not_found(segment: str) -> EmulatorError:
    """A URL segment that names no entity set, function or action (TSHOOT)."""
    return EmulatorError(
        404, RESOURCE_NOT_FOUND, f"Resource not found for the segment '{segment}'."
    )


def restricted_delete() -> EmulatorError:
    """A delete refused because a row still points at the record through a relationship whose
    delete rule is Restrict: 405 (COMPOSE) with CannotDeleteDueToAssociation, whose message is
    the one Microsoft's error list gives (powerapps-docs
    powerapps-docs/developer/data-platform/includes/data-service-error-codes.md @74a5b38e…)."""
    return EmulatorError(
        405,
        RESTRICTED_DELETE,
        "The object you tried to delete is associated with another object and cannot be deleted.",
    )
