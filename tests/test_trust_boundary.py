"""The trust boundary (docs/security.md): what a pull request writes cannot steer the target,
the org's token or a saved plan. Through the CLI, in-process, against local and served
emulators and a bare listener on loopback."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from examples_project import copy_examples
from served import Served
from test_apply_cli import dump, run
from tokens import entra, jwt, loopback_certificate

from reconciler.dataverse import AuthError, Certificate, ClientCredentials, auth_from_environment
from reconciler.dataverse.auth import jwt_audiences
from reconciler.dataverse.clouds import authority_for, cloud_of
from reconciler.errors import UsageError
from reconciler.plan.definition import compute_checksum
from reconciler.targets import choose_target, parse_target

CONTOSO = "https://contoso.crm4.dynamics.com"
KEY = "k" * 16 + "-the-pipeline-signing-key-0123456789"
OTHER_KEY = "o" * 16 + "-another-pipelines-key-9876543210"


class Listener:
    """A bare TCP listener on loopback that records every byte anyone sends it."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.05)  # accept() wakes up to see ``stopped``
        self.stopped = False
        self.received = b""
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}"

    def _serve(self) -> None:
        while not self.stopped:
            try:
                connection, _ = self.socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            with connection:
                connection.settimeout(2)
                try:
                    while chunk := connection.recv(65536):
                        self.received += chunk
                except OSError:
                    pass

    def close(self) -> None:
        self.stopped = True
        self.thread.join(5)
        self.socket.close()


@pytest.fixture
def listener() -> Any:
    found = Listener()
    yield found
    found.close()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return copy_examples(tmp_path, monkeypatch)


def retarget(project: Path, env: str, target: str) -> None:
    """What a pull request can do: point an environment of reconciler.yaml somewhere else."""
    path = project / "reconciler.yaml"
    text = path.read_text()
    old = {"dev": "local:.reconciler/dev.db", "prod": CONTOSO}[env]
    path.write_text(text.replace(f"target: {old}", f"target: {target}"))


# --- the target and the token -------------------------------------------------------------


def test_a_token_for_the_org_never_reaches_a_target_a_pull_request_chose(
    project, capsys, monkeypatch, listener
):
    token = jwt(CONTOSO)
    monkeypatch.setenv("DATAVERSE_TOKEN", token)
    retarget(project, "prod", listener.url)
    code, out, err = run(capsys, "plan", "examples", "--env", "prod", "--no-color")
    assert code == 1
    assert f"DATAVERSE_TOKEN was issued for {CONTOSO}; it is only sent there" in err
    assert token not in out + err
    assert listener.connections == 0
    assert token.encode() not in listener.received


def test_a_pinned_target_wins_and_the_pull_requests_target_is_never_contacted(
    project, capsys, monkeypatch, listener
):
    retarget(project, "dev", listener.url)
    monkeypatch.setenv("RECONCILER_TARGET", "local:.reconciler/pinned.db")
    code, out, err = run(capsys, "plan", "examples", "--env", "dev", "--format", "json")
    assert (code, err) == (0, ""), err
    assert json.loads(out)["target"]["url"] == "local:.reconciler/pinned.db"
    assert listener.connections == 0
    code, out, err = run(capsys, "plan", "examples", "--env", "dev", "--target", "local:x.db")
    assert code == 0
    assert listener.connections == 0


def test_a_token_that_is_not_a_jwt_goes_only_to_loopback(project, capsys, monkeypatch):
    monkeypatch.setenv("DATAVERSE_TOKEN", "emulator-token")
    with pytest.raises(AuthError, match="not a JWT"):
        auth_from_environment(CONTOSO, {"DATAVERSE_TOKEN": "emulator-token"})
    with Served(project.parent / "org.db", "--token", "emulator-token") as org:
        code, _, err = run(capsys, "plan", "examples", "--env", "dev", "--target", org.url)
    assert (code, err) == (0, ""), err


def test_a_jwt_goes_to_the_host_its_audience_names_and_nowhere_else():
    token = jwt([CONTOSO + "/", "00000007-0000-0000-c000-000000000000"])
    assert jwt_audiences(token) == (CONTOSO + "/", "00000007-0000-0000-c000-000000000000")
    assert auth_from_environment(CONTOSO, {"DATAVERSE_TOKEN": token}) is not None
    for elsewhere in (
        "https://fabrikam.crm4.dynamics.com",
        "https://contoso.crm4.dynamics.com.example.net",
        "https://contoso.crm4.dynamics.com:8443",
    ):
        with pytest.raises(AuthError, match="it is only sent there") as caught:
            auth_from_environment(elsewhere, {"DATAVERSE_TOKEN": token})
        assert token not in str(caught.value)
    with pytest.raises(AuthError, match="names no org in its audience"):
        auth_from_environment(CONTOSO, {"DATAVERSE_TOKEN": jwt(None)})


@pytest.mark.parametrize(
    "host",
    [
        "contoso.crm.dynamics.com",
        "contoso.crm4.dynamics.com",
        "contoso.crm11.dynamics.com",
        "contoso.api.crm4.dynamics.com",
        "contoso.crm9.dynamics.com",
        "agency.crm.microsoftdynamics.us",
        "dod.crm.appsplatform.us",
        "contoso.crm.dynamics.cn",
        "CONTOSO.CRM4.DYNAMICS.COM",
    ],
)
def test_the_clouds_hosts_are_targets(host):
    assert parse_target(f"https://{host}").url == f"https://{host.lower()}"


@pytest.mark.parametrize(
    "host",
    [
        "contoso.crm4.dynamics.com.example.net",
        "contoso-crm4.dynamics.com",
        "crm4.dynamics.com",
        "a.b.crm4.dynamics.com",
        "contoso.crm4.dynamics.co",
        "contoso.crm123.dynamics.com",
        "contoso.crm.dynamics.com.cn",
        "example.com",
    ],
)
def test_look_alike_hosts_are_refused_unless_the_environment_allows_them(host):
    with pytest.raises(UsageError, match="is not a Dataverse host") as caught:
        parse_target(f"https://{host}")
    assert "RECONCILER_ALLOWED_HOSTS" in str(caught.value)
    allowed = {"RECONCILER_ALLOWED_HOSTS": f"other.example, {host.upper()}"}
    assert parse_target(f"https://{host}", allowed).url == f"https://{host}"
    assert choose_target(None, {"RECONCILER_TARGET": f"https://{host}", **allowed}).kind == "https"


def test_plain_http_only_on_loopback():
    with pytest.raises(UsageError, match="only allowed for an emulator on loopback"):
        parse_target("http://contoso.crm4.dynamics.com")
    assert parse_target("http://[::1]:8123").url == "http://[::1]:8123"


def test_each_cloud_signs_in_at_its_own_authority():
    assert cloud_of("x.crm.microsoftdynamics.us") is not None
    assert authority_for("contoso.crm4.dynamics.com") == "https://login.microsoftonline.com"
    assert authority_for("agency.crm.microsoftdynamics.us") == "https://login.microsoftonline.us"
    assert authority_for("dod.crm.appsplatform.us") == "https://login.microsoftonline.us"
    assert authority_for("x.crm.dynamics.cn") == "https://login.partner.microsoftonline.cn"
    env = {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "s"}
    provider = auth_from_environment("https://agency.crm.microsoftdynamics.us", env)
    assert isinstance(provider, ClientCredentials)
    assert provider.authority == "https://login.microsoftonline.us"
    assert provider.scope == "https://agency.crm.microsoftdynamics.us/.default"
    with pytest.raises(AuthError, match="AZURE_AUTHORITY_HOST must be an https URL"):
        auth_from_environment(CONTOSO, {**env, "AZURE_AUTHORITY_HOST": "http://127.0.0.1:1"})


def test_a_certificate_signs_in_through_msal(tmp_path):
    cert_path, key_path = loopback_certificate(tmp_path)
    pem = tmp_path / "app.pem"
    pem.write_bytes(key_path.read_bytes() + cert_path.read_bytes())
    forms: list[dict[str, list[str]]] = []

    def token_endpoint(request: httpx.Request) -> httpx.Response:
        from urllib.parse import parse_qs

        forms.append(parse_qs(request.content.decode()))
        return httpx.Response(200, json={"access_token": "issued", "expires_in": 3600})

    env = {
        "AZURE_TENANT_ID": "tenant",
        "AZURE_CLIENT_ID": "app",
        "AZURE_CLIENT_CERTIFICATE_PATH": str(pem),
        "RECONCILER_AUTH": "client-certificate",
    }
    provider = auth_from_environment(CONTOSO, env)
    assert isinstance(provider, ClientCredentials)
    assert "certificate=<redacted>" in repr(provider)
    via = ClientCredentials(
        "tenant",
        "app",
        Certificate(str(pem)),
        f"{CONTOSO}/.default",
        transport=entra(token_endpoint),
    )
    assert asyncio.run(via.token()) == "issued"
    (form,) = forms
    assert "client_secret" not in form
    assertion = form["client_assertion"][0]
    header = json.loads(_b64(assertion.split(".")[0]))
    assert "x5t#S256" in header  # MSAL's SHA-256 thumbprint of the certificate
    assert key_path.read_text().splitlines()[1] not in json.dumps(form)
    unencrypted = serialization.load_pem_private_key(key_path.read_bytes(), None)
    assert unencrypted is not None
    bad = tmp_path / "only-cert.pem"
    bad.write_bytes(cert_path.read_bytes())
    with pytest.raises(AuthError, match="must hold the private key and the certificate"):
        asyncio.run(
            ClientCredentials(
                "tenant", "app", Certificate(str(bad)), "s", transport=entra(token_endpoint)
            ).token()
        )


def _b64(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- signed plans ---------------------------------------------------------------------------


def save(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, _, err = run(capsys, "plan", "examples", "--env", "dev", "--out", "p.json")
    assert (code, err) == (0, ""), err
    return json.loads(Path("p.json").read_text())  # type: ignore[no-any-return]


def apply_saved(capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    return run(capsys, "apply", "--plan", "p.json", "--yes", "--no-color")


def make_target(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "plan", "examples", "--env", "dev")
    assert code == 0, err


def test_with_a_key_only_the_plan_it_signed_applies(project, capsys, monkeypatch):
    make_target(capsys)
    monkeypatch.setenv("RECONCILER_PLAN_KEY", OTHER_KEY)
    save(capsys)
    other = Path("p.json").read_text()
    monkeypatch.delenv("RECONCILER_PLAN_KEY")
    save(capsys)
    unsigned = Path("p.json").read_text()
    monkeypatch.setenv("RECONCILER_PLAN_KEY", KEY)
    signed = save(capsys)
    assert signed["signature"].startswith("hmac-sha256:")
    edited = json.loads(json.dumps(signed))
    queue = next(c for c in edited["changes"] if c["address"] == "Queue/vip-support")
    queue["fields"][0]["after"] = 99
    edited["checksum"] = compute_checksum(edited)
    before = dump()
    for text, why in [
        (unsigned, "it is not signed"),
        (other, "its signature does not match"),
        (json.dumps(edited), "its signature does not match"),
    ]:
        Path("p.json").write_text(text)
        code, out, err = apply_saved(capsys)
        assert code == 3, out + err
        assert f"p.json cannot be verified with RECONCILER_PLAN_KEY: {why}" in err
        assert KEY not in out + err
        assert dump() == before
    Path("p.json").write_text(json.dumps(signed))
    code, out, err = apply_saved(capsys)
    assert (code, err) == (0, ""), out + err
    assert dump() != before


def test_a_signed_plan_without_the_key_applies_with_a_warning(project, capsys, monkeypatch):
    monkeypatch.setenv("RECONCILER_PLAN_KEY", KEY)
    save(capsys)
    monkeypatch.delenv("RECONCILER_PLAN_KEY")
    code, _, err = apply_saved(capsys)
    assert code == 0
    assert "warning: p.json is signed, but RECONCILER_PLAN_KEY is not set" in err


def test_a_key_too_short_to_be_a_secret_is_refused(project, capsys, monkeypatch):
    monkeypatch.setenv("RECONCILER_PLAN_KEY", "hunter2")
    code, _, err = run(capsys, "plan", "examples", "--env", "dev", "--out", "p.json")
    assert code == 2 or code == 1
    assert "RECONCILER_PLAN_KEY is 7 characters long" in err
    assert "hunter2" not in err
    assert not Path("p.json").exists()


def test_a_saved_plan_must_keep_its_etags_org_and_target(project, capsys, monkeypatch):
    with Served(project.parent / "org.db") as org:
        there = ["--env", "dev", "--target", org.url]
        code, _, err = run(capsys, "apply", "examples", *there, "--yes")
        assert code == 0, err
        edit = project / "queues.yaml"
        edit.write_text(edit.read_text().replace("priority: 1 ", "priority: 2 ", 1))
        code, _, err = run(capsys, "plan", "examples", *there, "--out", "p.json")
        assert code == 0, err
        saved = json.loads(Path("p.json").read_text())
        update = next(c for c in saved["changes"] if c["action"] == "update")

        def refused(change: dict[str, Any], says: str, *extra: str) -> None:
            Path("p.json").write_text(json.dumps(change))
            code, out, err = run(capsys, "apply", "--plan", "p.json", "--yes", *extra)
            assert code == 3, out + err
            assert says in err, err

        no_org = json.loads(json.dumps(saved))
        no_org["target"]["organization_id"] = None
        no_org["checksum"] = compute_checksum(no_org)
        refused(no_org, f"p.json names no organization_id for {org.url}")
        no_etag = json.loads(json.dumps(saved))
        next(c for c in no_etag["changes"] if c["address"] == update["address"])["etag"] = None
        no_etag["checksum"] = compute_checksum(no_etag)
        refused(no_etag, f"without the ETag they were read with ({update['address']})")
        monkeypatch.setenv("RECONCILER_TARGET", "local:.reconciler/elsewhere.db")
        refused(saved, f"the plan was made for {org.url}, not local:.reconciler/elsewhere.db")
        monkeypatch.delenv("RECONCILER_TARGET")
        elsewhere = json.loads(json.dumps(saved))
        elsewhere["target"]["url"] = "https://contoso.crm4.dynamics.com.example.net"
        elsewhere["checksum"] = compute_checksum(elsewhere)
        Path("p.json").write_text(json.dumps(elsewhere))
        code, _, err = run(capsys, "apply", "--plan", "p.json", "--yes")
        assert code == 2 or code == 1
        assert "is not a Dataverse host" in err


def test_a_certificate_that_cannot_be_opened_is_named_never_its_passphrase(tmp_path):
    cert_path, key_path = loopback_certificate(tmp_path)
    pem = tmp_path / "app.pem"
    pem.write_bytes(key_path.read_bytes() + cert_path.read_bytes())
    for certificate, says in [
        (Certificate(str(pem), "pass-PHRASE-marker"), "cannot be opened: "),
        (Certificate(str(tmp_path / "gone.pfx")), "cannot read the client certificate"),
        (Certificate(str(tmp_path / "app.pfx"), "x"), "cannot read the client certificate"),
    ]:
        provider = ClientCredentials("t", "c", certificate, "s", transport=entra(lambda r: r))
        with pytest.raises(AuthError, match=says) as caught:
            asyncio.run(provider.token())
        assert "pass-PHRASE-marker" not in str(caught.value)


@pytest.mark.parametrize(
    ("target", "shown"),
    [
        ("https://user:hunter2@", "the target is not a target"),
        ("ftp://user:hunter2@org.crm.dynamics.com", "the target is not a target"),
        ("https://org.crm.dynamics.com/?access_token=hunter2", "must not carry a query"),
        ("https://u:hunter2@org.crm.dynamics.com", "'https://***@org.crm.dynamics.com'"),
    ],
)
def test_a_target_error_never_echoes_a_password_or_a_query(target, shown):
    with pytest.raises(UsageError, match=re.escape(shown)) as caught:
        parse_target(target)
    assert "hunter2" not in str(caught.value)


def test_one_org_one_spelling():
    for same in ("https://contoso.crm4.dynamics.com.", "https://contoso.crm4.dynamics.com:443"):
        assert parse_target(same).url == CONTOSO
    with pytest.raises(UsageError, match="invalid port"):
        parse_target(f"{CONTOSO}:0")


def test_a_saved_plan_cannot_trade_its_etag_for_a_wildcard_or_break_the_reader(
    project, capsys, monkeypatch
):
    make_target(capsys)
    code, _, err = run(capsys, "apply", "examples", "--env", "dev", "--yes")
    assert code == 0, err
    edit = project / "queues.yaml"
    edit.write_text(edit.read_text().replace("priority: 1 ", "priority: 2 ", 1))
    saved = save(capsys)
    update = next(c for c in saved["changes"] if c["action"] == "update")
    update["etag"] = "*"
    saved["checksum"] = compute_checksum(saved)
    Path("p.json").write_text(json.dumps(saved))
    code, _, err = apply_saved(capsys)
    assert code == 3
    assert f"without the ETag they were read with ({update['address']})" in err
    monkeypatch.setenv("RECONCILER_PLAN_KEY", KEY)
    for signature in ("hmac-sha256:é", "hmac-sha256:\ud800"):
        saved["signature"] = signature
        Path("p.json").write_text(json.dumps(saved))
        code, _, err = apply_saved(capsys)
        assert code in (1, 3), err
        assert "unexpected internal error" not in err


def test_a_manifest_linked_to_outside_the_folder_is_not_read(project, capsys, tmp_path):
    outside = tmp_path / "outside.yaml"
    outside.write_text("kind: SECRET-KIND-def456\nSECRET-KEY-71: x\n")
    (project / "creds.yaml").symlink_to(outside)
    (project / "inner.yaml").symlink_to(project / "queues.yaml")  # inside: read as usual
    code, out, err = run(capsys, "validate", "examples", "--no-color")
    assert code == 1
    assert "examples/creds.yaml:1:1: error: a link to a file outside the folder being read" in out
    assert "SECRET-KIND" not in out + err
    assert "SECRET-KEY" not in out + err
