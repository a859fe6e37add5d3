"""Which hosts are Dataverse orgs, and which Entra ID authority signs their tokens.

A target's host decides where the org's bearer token and the manifests' secrets go, so only
hosts of Microsoft's Dataverse clouds are accepted (``is_dataverse_host``) unless the
environment lists more (``RECONCILER_ALLOWED_HOSTS``, see ``reconciler.targets``).

The five clouds and their domains are those of the Global Discovery Service table in
"Discover user organizations" (https://learn.microsoft.com/power-apps/developer/data-platform/discovery-service,
MicrosoftDocs/powerapps-docs powerapps-docs/developer/data-platform/discovery-service.md):
Commercial ``crm.dynamics.com`` (regions as ``crmN.dynamics.com``), GCC ``crm9.dynamics.com``,
USG/GCC High ``crm.microsoftdynamics.us``, DOD ``crm.appsplatform.us``, China
``crm.dynamics.cn``. An org is ``ORG.<domain>``; the service's ``ApiUrl`` example
(``yourorganization.api.crm.dynamics.com``) shows the ``ORG.api.<domain>`` form too.

The authorities are the "Microsoft Entra authentication endpoints" of
https://learn.microsoft.com/entra/identity-platform/authentication-national-cloud: the global
service ``login.microsoftonline.com``, US Government ``login.microsoftonline.us``, and
21Vianet's China cloud ``login.partner.microsoftonline.cn``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

GLOBAL_AUTHORITY = "https://login.microsoftonline.com"
US_GOVERNMENT_AUTHORITY = "https://login.microsoftonline.us"
CHINA_AUTHORITY = "https://login.partner.microsoftonline.cn"


@dataclass(frozen=True)
class Cloud:
    name: str
    domain: str  # a regular expression for the domain after ORG. (or ORG.api.)
    authority: str


CLOUDS = (
    Cloud("Commercial and GCC", r"crm[0-9]{0,2}\.dynamics\.com", GLOBAL_AUTHORITY),
    Cloud("USG (GCC High)", r"crm\.microsoftdynamics\.us", US_GOVERNMENT_AUTHORITY),
    Cloud("DOD", r"crm\.appsplatform\.us", US_GOVERNMENT_AUTHORITY),
    Cloud("China (21Vianet)", r"crm\.dynamics\.cn", CHINA_AUTHORITY),
)
# One DNS label (RFC 1123: letters, digits, inner hyphens, at most 63 characters).
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"  # ASCII only: [0-9], never \d
_HOSTS = [(re.compile(rf"{_LABEL}(?:\.api)?\.{cloud.domain}"), cloud) for cloud in CLOUDS]

DOMAINS_SHOWN = (
    "ORG.crm[N].dynamics.com, ORG.crm.microsoftdynamics.us, ORG.crm.appsplatform.us "
    "or ORG.crm.dynamics.cn"
)


def cloud_of(host: str) -> Cloud | None:
    """The Dataverse cloud ``host`` belongs to; ``None`` for any other host (look-alikes such
    as ``org.crm.dynamics.com.example.net`` or ``org-crm.dynamics.com`` included)."""
    name = host.lower().rstrip(".")
    for pattern, cloud in _HOSTS:
        if pattern.fullmatch(name):
            return cloud
    return None


def is_dataverse_host(host: str) -> bool:
    return cloud_of(host) is not None


def authority_for(host: str) -> str:
    """The Entra ID authority that issues tokens for the org at ``host`` (the global one for a
    host that is not a Dataverse cloud's: an allow-listed host; ``AZURE_AUTHORITY_HOST``
    overrides it)."""
    cloud = cloud_of(host)
    return cloud.authority if cloud is not None else GLOBAL_AUTHORITY


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
