"""Bearer tokens shaped like Entra ID's (a JWT whose ``aud`` names the org it is for), and an
Entra ID stand-in for MSAL (``entra``).

Unsigned (the signature part is a placeholder): the reconciler reads the audience to decide
where a token may go, and never verifies it (that is Dataverse's job).
"""

import base64
import datetime
import ipaddress
import json
from collections.abc import Callable
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def _part(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def jwt(audience: str | list[str] | None, **claims: object) -> str:
    """A JWT for ``audience`` (e.g. ``https://contoso.crm4.dynamics.com``)."""
    payload = {"iss": "https://sts.windows.net/tenant/", **claims}
    if audience is not None:
        payload["aud"] = audience
    return f"{_part({'typ': 'JWT', 'alg': 'RS256'})}.{_part(payload)}.c2lnbmF0dXJl"


def openid_configuration(request: httpx.Request) -> httpx.Response:
    """What Entra ID's tenant discovery answers (MSAL reads it before its first token)."""
    tenant = request.url.path.split("/")[1]
    base = f"{request.url.scheme}://{request.url.netloc.decode()}/{tenant}"
    return httpx.Response(
        200,
        json={
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "issuer": f"{base}/v2.0",
        },
    )


def entra(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.MockTransport:
    """An Entra ID stand-in: tenant discovery answered here, token requests by ``handler``."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.endswith("/openid-configuration"):
            return openid_configuration(request)
        return handler(request)

    return httpx.MockTransport(answer)


def loopback_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM files in ``folder``): for an
    https stand-in on loopback (MSAL accepts only https authorities) that clients trust through
    ``SSL_CERT_FILE``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "loopback-cert.pem", folder / "loopback-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
