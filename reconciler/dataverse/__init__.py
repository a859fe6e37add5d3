"""A client for the Dataverse Web API: reads, writes, ``$batch``, retries, tokens, errors.

Its names load when first used (PEP 562), so that what needs only the table catalogue
(``reconciler.dataverse.tables``: validation, the kinds) does not import the HTTP stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.dataverse.auth import (
        Certificate,
        ClientCredentials,
        StaticToken,
        TokenProvider,
        auth_from_environment,
        checked_audience,
    )
    from reconciler.dataverse.batch import BatchRequest, BatchResponse, ChangeSet
    from reconciler.dataverse.client import DataverseClient, RequestStats, WhoAmI
    from reconciler.dataverse.errors import (
        AlreadyExists,
        ApiError,
        AuthError,
        BadRequest,
        DataverseError,
        NotFound,
        OutcomeUnknown,
        PreconditionFailed,
        ProtocolError,
        ServerError,
        StaleRecord,
        Throttled,
        TransportError,
        Unauthorized,
    )
    from reconciler.dataverse.retry import RetryPolicy

_WHERE = {
    "AlreadyExists": "errors",
    "ApiError": "errors",
    "AuthError": "errors",
    "BadRequest": "errors",
    "BatchRequest": "batch",
    "BatchResponse": "batch",
    "Certificate": "auth",
    "ChangeSet": "batch",
    "ClientCredentials": "auth",
    "DataverseClient": "client",
    "DataverseError": "errors",
    "NotFound": "errors",
    "OutcomeUnknown": "errors",
    "PreconditionFailed": "errors",
    "ProtocolError": "errors",
    "RequestStats": "client",
    "RetryPolicy": "retry",
    "ServerError": "errors",
    "StaleRecord": "errors",
    "StaticToken": "auth",
    "Throttled": "errors",
    "TokenProvider": "auth",
    "TransportError": "errors",
    "Unauthorized": "errors",
    "WhoAmI": "client",
    "auth_from_environment": "auth",
    "checked_audience": "auth",
}
"""Each name, by the module that defines it."""

__all__ = [
    "AlreadyExists",
    "ApiError",
    "AuthError",
    "BadRequest",
    "BatchRequest",
    "BatchResponse",
    "Certificate",
    "ChangeSet",
    "ClientCredentials",
    "DataverseClient",
    "DataverseError",
    "NotFound",
    "OutcomeUnknown",
    "PreconditionFailed",
    "ProtocolError",
    "RequestStats",
    "RetryPolicy",
    "ServerError",
    "StaleRecord",
    "StaticToken",
    "Throttled",
    "TokenProvider",
    "TransportError",
    "Unauthorized",
    "WhoAmI",
    "auth_from_environment",
    "checked_audience",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
