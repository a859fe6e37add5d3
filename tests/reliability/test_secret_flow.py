"""Secret hygiene over the whole flow, through the real CLI in subprocesses.

Every secret the shipped examples use (four environment variables and the service account key
file), plus the credentials a command can be given (``DATAVERSE_TOKEN``, a wrong token,
``AZURE_CLIENT_SECRET``), is a distinct marker string. Each marker has a plain core
(``MARKER-...``) and a tail of characters that JSON, URL and HTML escaping change.

The flow: ``validate``; ``plan`` in every format, verbose and ``--debug``; ``plan --out``;
``apply --plan``; ``apply PATHS``; ``export``; failing applies (a record changed out of band, a
wrong bearer token, a refused client secret, a secret too long for its column), against the
local target, a served emulator that checks the token, and a served emulator with injected
faults. Then every captured stdout and stderr (the emulators' too), and every file under the
test's tmp folder (the saved plans, the exports, ``.reconciler/``), save the targets' SQLite
files and the key file the examples read, are searched for each marker: plain, its core,
JSON-escaped, URL-encoded, hex, and base64 at any alignment.

The scan is shown to bite: every secret is found in the targets' databases (the service account
key only base64-encoded), and markers planted in a file in each form are found.

Two answers that quote the request are covered too: a write refused with a message quoting its
payload (a gateway in front of the emulator), and a token endpoint quoting the form it was sent
(the client secret URL-encoded): the client redacts every spelling of the secrets it sent.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import sqlite3
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, quote_plus

import httpx
from examples_project import ROOT
from served import Served
from tokens import loopback_certificate

from reconciler.mapping import kinds as k

TIMEOUT = 60.0
NAMESPACE = uuid.UUID("3b7c1e62-5d0a-4c8e-9f21-6a4d2b8e7c10")  # examples/reconciler.yaml
LOCAL = "local:examples/.reconciler/dev.db"  # the examples' dev environment (from tmp)

# What the examples read from the environment, and what replaces two of them later.
SECRETS = {
    "FB_APP_SECRET": 'MARKER-app-secret-7f3a/+"&=?é',
    "FB_PAGE_TOKEN_SUPPORT": "MARKER-support-token-91c2%20<b>&amp;",
    "FB_PAGE_TOKEN_DEALS": "MARKER-deals-token-44d0\\u0041'#",
    "GBM_CLIENT_TOKEN": "MARKER-gbm-token-0b7e~!*()'",
}
ROTATED_APP = {"FB_APP_SECRET": "MARKER-rotated-app-3c3c:@;,"}  # on the local target
ROTATED_PAGE = {"FB_PAGE_TOKEN_SUPPORT": "MARKER-rotated-support-8d8d[]{}|"}  # served
PRIVATE_KEY = "MARKER-private-key-5e5e\n+/=="
KEY_FILE = json.dumps({"type": "service_account", "private_key": PRIVATE_KEY}) + "\n"
# Credentials: a header carries a token, so no spaces and nothing outside ASCII.
TOKEN = 'MARKER-dataverse-token-6b6b/+"='
WRONG_TOKEN = "MARKER-wrong-token-2a2a/+=="
AZURE_SECRET = "MARKER-azure-secret-9e9e~/+&="
TOO_LONG = "MARKER-too-long-token-1f1f/" + "é" * 600  # more than a page token column holds

STORED = [*SECRETS.values(), *ROTATED_APP.values(), *ROTATED_PAGE.values(), PRIVATE_KEY]
"""The markers a target ends up holding."""
MARKERS = [*STORED, TOKEN, WRONG_TOKEN, AZURE_SECRET, TOO_LONG]
SQLITE = re.compile(r"\.db(?:-wal|-shm|-journal)?$")


# --- the scanner ------------------------------------------------------------------------------


def core(marker: str) -> str:
    """The marker up to its first character that any escaping could change."""
    match = re.match(r"[A-Za-z0-9-]+", marker)
    assert match is not None, marker
    assert len(match[0]) >= 16, marker
    return match[0]


def base64_inner(raw: bytes, shift: int, encode: Callable[[bytes], bytes]) -> bytes:
    """The base64 characters that only ``raw`` decides when ``raw`` starts ``shift`` bytes
    (mod 3) into the encoded data: found whatever comes before and after it."""
    encoded = encode(b"\0" * shift + raw + b"\0\0")
    return encoded[-(-8 * shift // 6) : 8 * (shift + len(raw)) // 6]


def forms(marker: str) -> dict[str, bytes]:
    """Every spelling of ``marker`` the scan looks for, by name."""
    raw, stem = marker.encode(), core(marker).encode()
    found = {
        "plain": raw,
        "core": stem,
        "json": json.dumps(marker)[1:-1].encode(),
        "json-utf8": json.dumps(marker, ensure_ascii=False)[1:-1].encode(),
        "url": quote(marker, safe="").encode(),
        "url-plus": quote_plus(marker).encode(),
        "hex": raw.hex().encode(),
    }
    encoders = {"base64": base64.b64encode, "base64url": base64.urlsafe_b64encode}
    for name, encode in encoders.items():
        for shift in range(3):
            found[f"{name}@{shift}"] = base64_inner(raw, shift, encode)
            found[f"{name}-core@{shift}"] = base64_inner(stem, shift, encode)
    return found


FORMS = {marker: forms(marker) for marker in MARKERS}


def find(blob: bytes, markers: list[str] = MARKERS) -> list[tuple[str, str]]:
    """(marker core, form) of every marker spelling in ``blob``."""
    return [
        (core(marker), name)
        for marker in markers
        for name, spelling in FORMS[marker].items()
        if spelling in blob
    ]


def written_files(folder: Path) -> Iterator[Path]:
    """Every file under ``folder`` but the SQLite files of the targets and the key file the
    examples read (the one place a secret may be)."""
    for path in sorted(folder.rglob("*")):
        secret = path.name == "gbm-service-account.json"
        if path.is_file() and not SQLITE.search(path.name) and not secret:
            yield path


def database_dump(db: Path) -> bytes:
    with sqlite3.connect(db) as connection:
        dump = "\n".join(connection.iterdump()).encode()
    connection.close()
    return dump


# --- running the CLI --------------------------------------------------------------------------


@dataclass
class Flow:
    """Runs ``reconciler`` in subprocesses in ``cwd`` and keeps everything they printed."""

    cwd: Path
    env: dict[str, str]
    outputs: list[tuple[str, bytes]] = field(default_factory=list)

    def run(
        self, *args: str | Path, code: int = 0, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(arg) for arg in args]
        done = subprocess.run(
            [sys.executable, "-m", "reconciler", *argv, "--no-color"],
            capture_output=True,
            cwd=self.cwd,
            env=env if env is not None else self.env,
            timeout=TIMEOUT,
            check=False,
        )
        name = " ".join(argv)
        self.outputs += [(f"{name} (stdout)", done.stdout), (f"{name} (stderr)", done.stderr)]
        stdout, stderr = done.stdout.decode(), done.stderr.decode()
        assert done.returncode == code, f"{name}: exit {done.returncode}\n{stdout}\n{stderr}"
        return subprocess.CompletedProcess(done.args, done.returncode, stdout, stderr)

    def run_all(
        self, *runs: list[str | Path], code: int = 0, env: dict[str, str] | None = None
    ) -> list[subprocess.CompletedProcess[str]]:
        """``run`` each of ``runs`` (none may write what another reads), two at a time."""
        with ThreadPoolExecutor(2) as pool:
            return list(pool.map(lambda args: self.run(*args, code=code, env=env), runs))

    def keep(self, name: str, emulator: Served) -> str:
        """Stop a served emulator and keep what it printed (``-v``: a line per request)."""
        _, out, err = emulator.stop()
        self.outputs += [(f"{name} (stdout)", (emulator.first_line + out).encode())]
        self.outputs += [(f"{name} (stderr)", err.encode())]
        return err


def environ() -> dict[str, str]:
    """This process's environment with the marker secrets, and no target or credentials."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("RECONCILER_", "DATAVERSE_", "AZURE_")) and name != "NO_COLOR"
    }
    return {**env, **SECRETS, "PYTHONUNBUFFERED": "1"}


def project(tmp_path: Path) -> Path:
    """A copy of the shipped examples, with the marker service account key."""
    examples = tmp_path / "examples"
    shutil.copytree(ROOT / "examples", examples, ignore=shutil.ignore_patterns("*.json"))
    (examples / "gbm-service-account.json").write_text(KEY_FILE)
    return examples


def rid(address: str) -> str:
    return str(uuid.uuid5(NAMESPACE, address))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


class Loopback(ThreadingHTTPServer):
    """An HTTP server on loopback in a thread; ``respond(handler, body)`` answers requests."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def respond(self, handler: _Handler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        raise NotImplementedError

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join()


class _Handler(BaseHTTPRequestHandler):
    server: Loopback
    protocol_version = "HTTP/1.1"

    def answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, headers, content = self.server.respond(self, body)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_PATCH = do_DELETE = answer

    def log_message(self, format: str, *args: object) -> None:
        pass


def error_answer(status: int, document: dict[str, object]) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(document).encode()


class TokenEndpoint(Loopback):
    """A Microsoft Entra ID stand-in on https (MSAL takes no other authority; clients trust its
    certificate through ``SSL_CERT_FILE``) that refuses every client secret, echoing it (or,
    with ``echo_form``, the whole form it was sent) in its error description."""

    def __init__(self, folder: Path, *, echo_form: bool = False) -> None:
        self.echo_form = echo_form
        self.forms: list[dict[str, list[str]]] = []
        self.certificate, key = loopback_certificate(folder)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certificate, key)
        super().__init__()
        self.socket = context.wrap_socket(self.socket, server_side=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"

    def respond(self, handler: _Handler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if handler.command == "GET":  # MSAL's tenant discovery
            tenant = handler.path.split("/")[1]
            base = f"{self.url}/{tenant}"
            document = {
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "issuer": f"{base}/v2.0",
            }
            return error_answer(200, document)
        form = parse_qs(body.decode())
        self.forms.append(form)
        echoed = body.decode() if self.echo_form else form.get("client_secret", [""])[0]
        return error_answer(
            401,
            {
                "error": "invalid_client",
                "error_description": f"AADSTS7000215: Invalid client secret provided: {echoed}",
            },
        )


class EchoingGateway(Loopback):
    """A gateway in front of a served emulator that refuses every write carrying a marker with
    a Dataverse error document quoting the payload, as some validation messages and proxies do;
    everything else goes through."""

    def __init__(self, emulator: Served) -> None:
        self.emulator = emulator
        self.refused = 0
        super().__init__()

    def respond(self, handler: _Handler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if handler.command in ("POST", "PATCH") and b"MARKER-" in body:
            self.refused += 1
            message = f"Error identified in Payload provided by the user: {body.decode()}"
            return error_answer(400, {"error": {"code": "0x80048d19", "message": message}})
        skip = {"host", "content-length", "connection"}
        answer = httpx.request(
            handler.command,
            f"{self.emulator.url}{handler.path}",
            content=body,
            headers={n: v for n, v in handler.headers.items() if n.lower() not in skip},
            timeout=TIMEOUT,
            trust_env=False,
        )
        kept = {"content-type", "odata-version", "odata-entityid", "etag", "retry-after"}
        headers = {n: v for n, v in answer.headers.items() if n.lower() in kept}
        return answer.status_code, headers, answer.content


def patched(emulator: Served, path: str, body: dict[str, object]) -> None:
    """A change out of band, as another tool would make it."""
    answer = httpx.patch(
        f"{emulator.url}/api/data/v9.2/{path}",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=TIMEOUT,
        trust_env=False,
    )
    assert answer.status_code == 204, answer.text


# --- the flow ---------------------------------------------------------------------------------


def local_flow(flow: Flow, examples: Path) -> None:
    """validate, plan (every format), plan --out, apply --plan, apply PATHS, export."""
    flow.run_all(
        ["validate", examples],
        ["validate", examples, "--format", "json", "-v"],
        ["validate", examples, "-vv", "--debug"],
    )
    dev = [examples, "--env", "dev"]
    flow.run("plan", *dev)  # makes the target: the plans after it only read it
    flow.run_all(
        *(
            ["plan", *dev, *extra]
            for extra in [
                ["--format", "json"],
                ["--format", "markdown"],
                ["-v"],
                ["-vv", "--debug"],
                ["--format", "markdown", "-vv", "--debug"],
                ["--format", "json", "-vv", "--debug"],
            ]
        )
    )
    flow.run("plan", *dev, "--out", "saved/local-plan.json", "-v")
    applied = flow.run("apply", "--plan", "saved/local-plan.json", "--yes", "-vv", "--debug")
    assert "Apply complete: " in applied.stdout
    flow.run("apply", *dev, "--yes", "-v")
    rotated = flow.run(
        "apply", *dev, "--yes", "-vv", "--debug", env={**flow.env, **ROTATED_APP}
    ).stdout
    assert "~ FacebookAccount/contoso-facebook: updated" in rotated, rotated
    flow.run("plan", *dev, "--detailed-exitcode", "-vv", "--debug", env={**flow.env, **ROTATED_APP})
    flow.run("export", "--out", "exported-local", "--target", LOCAL, "-vv", "--debug")
    # a secret the target cannot hold: refused before any write, the secret never shown
    too_long = {**flow.env, "FB_PAGE_TOKEN_DEALS": TOO_LONG}
    failed = flow.run("apply", *dev, "--yes", "-vv", "--debug", code=1, env=too_long)
    assert "Dataverse holds at most 500" in failed.stderr, failed.stderr


def served_flow(flow: Flow, examples: Path, tmp_path: Path) -> None:
    """The same against an emulator that requires the marker token, then failing applies: a
    saved plan gone stale, a wrong token; and an apply through injected faults."""
    env = {**flow.env, "DATAVERSE_TOKEN": TOKEN}
    with Served(tmp_path / "org.db", "--token", TOKEN, "-v", token=TOKEN) as emulator:
        there = [examples, "--env", "dev", "--target", emulator.url]
        flow.run_all(
            *(
                ["plan", *there, *extra]
                for extra in [
                    [],
                    ["--format", "json"],
                    ["--format", "markdown"],
                    ["-vv", "--debug"],
                ]
            ),
            env=env,
        )
        flow.run("plan", *there, "--out", "saved/served-plan.json", env=env)
        applied = flow.run(
            "apply", "--plan", "saved/served-plan.json", "--yes", "-vv", "--debug", env=env
        )
        assert "Apply complete: " in applied.stdout
        flow.run("apply", *there, "--yes", "-v", env=env)
        flow.run("export", "--out", "exported-served", "--target", emulator.url, "-v", env=env)

        # a rotated page token and a queue another tool changes after the plan
        rotated = {**env, **ROTATED_PAGE}
        edit(examples / "queues.yaml", "priority: 1 ", "priority: 2 ")
        flow.run("plan", *there, "--out", "saved/stale-plan.json", "-v", env=rotated)
        patched(emulator, f"queues({rid('Queue/vip-support')})", {"msdyn_priority": 7})
        stale = flow.run(
            "apply",
            "--plan",
            "saved/stale-plan.json",
            "--yes",
            "-vv",
            "--debug",
            code=1,
            env=rotated,
        )
        assert re.search(r"^! Queue/vip-support: update stale", stale.stdout, re.M), stale.stdout
        assert "Apply incomplete: " in stale.stdout
        edit(examples / "queues.yaml", "priority: 2 ", "priority: 1 ")

        wrong = {**rotated, "DATAVERSE_TOKEN": WRONG_TOKEN}
        refused, *_ = flow.run_all(
            ["apply", *there, "--yes", "-vv", "--debug"],
            ["plan", *there, "--format", "json", "--debug"],
            ["export", "--out", "refused-export", "--target", emulator.url],
            code=1,
            env=wrong,
        )
        assert "401" in refused.stderr, refused.stderr
        page = rid("FacebookAccount/contoso-facebook/Contoso Support")
        held = emulator.get(f"{k.FACEBOOK_PAGE.table.entity_set}({page})").json()
        assert held["msdyn_fbpageaccesstoken"] == ROTATED_PAGE["FB_PAGE_TOKEN_SUPPORT"]
        flow.keep("emulator serve --token", emulator)

    faults = ("--fault-rate", "0.15", "--seed", "3", "-v")
    with Served(tmp_path / "faulty.db", *faults) as emulator:
        there = [examples, "--env", "dev", "--target", emulator.url]
        applied = flow.run("apply", *there, "--yes", "-vv", "--debug", env=env)
        assert "Apply complete: " in applied.stdout
        log = flow.keep("emulator serve --fault-rate", emulator)
    assert re.search(r" -> (?:429|503) ", log), "no fault was injected"


def client_credentials(env: dict[str, str], endpoint: TokenEndpoint) -> dict[str, str]:
    """``env`` with an app registration's credentials, its tokens from ``endpoint``."""
    return {
        **env,
        "AZURE_TENANT_ID": "contoso-tenant",
        "AZURE_CLIENT_ID": "reconciler-ci",
        "AZURE_CLIENT_SECRET": AZURE_SECRET,
        "AZURE_AUTHORITY_HOST": endpoint.url,
        "SSL_CERT_FILE": str(endpoint.certificate),
    }


def azure_flow(flow: Flow, examples: Path) -> None:
    """A real org's target with client credentials the token endpoint refuses."""
    endpoint = TokenEndpoint(examples.parent)
    try:
        env = client_credentials(flow.env, endpoint)
        prod = [examples, "--env", "prod"]
        refused, _ = flow.run_all(
            ["apply", *prod, "--yes", "-vv", "--debug"],
            ["plan", *prod, "--format", "json", "-vv", "--debug"],
            code=1,
            env=env,
        )
        assert "refused the client credentials" in refused.stderr, refused.stderr
    finally:
        endpoint.close()
    assert endpoint.forms, "the token endpoint was never asked"
    assert {form["client_secret"][0] for form in endpoint.forms} == {AZURE_SECRET}


def test_no_secret_reaches_any_output_or_file_of_the_whole_flow(tmp_path):
    examples = project(tmp_path)
    (tmp_path / "saved").mkdir()
    flow = Flow(tmp_path, environ())

    local_flow(flow, examples)
    served_flow(flow, examples, tmp_path)
    azure_flow(flow, examples)

    assert len(flow.outputs) >= 70
    leaks = {name: found for name, output in flow.outputs if (found := find(output))}
    files = list(written_files(tmp_path))
    names = {path.relative_to(tmp_path).as_posix() for path in files}
    assert {"saved/local-plan.json", "saved/stale-plan.json", "exported-served/README.md"} <= names
    assert any(name.startswith("exported-local/") for name in names)
    leaks |= {str(path): found for path in files if (found := find(path.read_bytes()))}
    assert leaks == {}

    # The scan bites: the secrets are in the targets, the key base64-encoded only.
    held = database_dump(tmp_path / "examples" / ".reconciler" / "dev.db")
    held += database_dump(tmp_path / "org.db") + database_dump(tmp_path / "faulty.db")
    for marker in STORED:
        assert find(held, [marker]), f"{core(marker)} never reached a target"
    key = {form for _, form in find(held, [PRIVATE_KEY])}
    assert key, "the service account key never reached a target"
    assert all(form.startswith("base64") for form in key), key
    assert not find(held, [TOKEN, WRONG_TOKEN, AZURE_SECRET, TOO_LONG])


def test_the_scanner_finds_a_marker_in_every_form(tmp_path):
    """Each spelling, planted at each alignment between other bytes, is found; and only there."""
    marker = SECRETS["FB_APP_SECRET"]
    planted = {
        "plain.txt": marker.encode(),
        "json.json": json.dumps({"value": marker}).encode(),
        "url.log": f"GET /x?secret={quote_plus(marker)}&y=1".encode(),
        "html.md": marker.replace("&", "&amp;").replace('"', "&quot;").encode(),
        "hex.txt": marker.encode().hex().encode(),
        "key.json": KEY_FILE.encode(),  # the private key marker, JSON-escaped inside a file
    }
    for before in range(3):
        text = b"x" * before + marker.encode() + b"trailing"
        planted[f"base64-{before}.txt"] = base64.b64encode(text)
        planted[f"base64url-{before}.txt"] = base64.urlsafe_b64encode(text)
    planted["base64-key.txt"] = base64.b64encode(KEY_FILE.encode())
    folder = tmp_path / "nested" / ".reconciler"
    folder.mkdir(parents=True)
    (folder / "clean.txt").write_text("MARKER-app-secret without the rest is not a marker")
    (tmp_path / "x.db-wal").write_bytes(marker.encode())  # a target's file: not scanned
    for name, content in planted.items():
        (folder / name).write_bytes(content)

    found = {path.name: find(path.read_bytes()) for path in written_files(tmp_path)}
    assert found.pop("clean.txt") == []
    assert set(found) == set(planted)
    assert all(found.values()), found
    assert ("MARKER-private-key-5e5e", "json") in found["key.json"]
    assert all(form.startswith("base64") for _, form in found["base64-1.txt"])
    assert all(form.startswith("base64") for _, form in found["base64-key.txt"])


# --- answers that quote the request -------------------------------------------------------------


def test_a_write_refused_with_a_message_quoting_its_payload_shows_no_secret(tmp_path):
    examples = project(tmp_path)
    flow = Flow(tmp_path, environ())
    with Served(tmp_path / "org.db") as emulator:
        gateway = EchoingGateway(emulator)
        try:
            there = [examples, "--env", "dev", "--target", gateway.url]
            failed = flow.run("apply", *there, "--yes", "-vv", "--debug", code=1)
        finally:
            gateway.close()
    assert gateway.refused >= 2
    assert re.search(r"^! FacebookAccount/contoso-facebook: create failed: ", failed.stdout, re.M)
    assert {name: found for name, output in flow.outputs if (found := find(output))} == {}


def test_a_token_endpoint_quoting_the_form_it_was_sent_shows_no_client_secret(tmp_path):
    examples = project(tmp_path)
    flow = Flow(tmp_path, environ())
    endpoint = TokenEndpoint(tmp_path, echo_form=True)
    try:
        env = client_credentials(flow.env, endpoint)
        refused = flow.run("plan", examples, "--env", "prod", "--debug", code=1, env=env)
    finally:
        endpoint.close()
    assert "refused the client credentials" in refused.stderr, refused.stderr
    assert {name: found for name, output in flow.outputs if (found := find(output))} == {}
