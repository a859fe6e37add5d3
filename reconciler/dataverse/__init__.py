"""A client for the Dataverse Web API: reads, writes, ``$batch``, retries, tokens, errors."""

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
