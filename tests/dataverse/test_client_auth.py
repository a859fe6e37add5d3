"""Token providers, the 401 re-authentication, and the promise that no secret leaks anywhere."""

import asyncio
import logging
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from tokens import entra, jwt

from reconciler.dataverse import (
    AuthError,
    BadRequest,
    ClientCredentials,
    DataverseClient,
    DataverseError,
    RetryPolicy,
    ServerError,
    StaticToken,
    TransportError,
    Unauthorized,
    auth_from_environment,
)

BASE = "https://contoso.crm4.dynamics.com/api/data/v9.2/"
TENANT = "11111111-2222-3333-4444-555555555555"
SCOPE = "https://contoso.crm4.dynamics.com/.default"
TOKEN_URL = f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"


class TokenEndpoint:
    """A fake Entra ID token endpoint handing out tok-1, tok-2, ..."""

    def __init__(self, expires_in: Any = 3600, answers: list[httpx.Response] | None = None):
        self.expires_in = expires_in
        self.answers = answers or []
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.answers:
            return self.answers.pop(0)
        body = {
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "access_token": f"tok-{len(self.requests)}",
        }
        return httpx.Response(200, json=body)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def credentials(endpoint: Any, secret: str = "s3cret", **kwargs: Any) -> ClientCredentials:
    return ClientCredentials(TENANT, "app-id", secret, SCOPE, transport=entra(endpoint), **kwargs)


def test_static_token():
    assert asyncio.run(StaticToken("abc").token()) == "abc"
    assert repr(StaticToken("abc")) == "StaticToken(<redacted>)"
    with pytest.raises(AuthError, match="empty"):
        StaticToken("")


def test_client_credentials_posts_the_form_to_the_tenant_endpoint():
    endpoint = TokenEndpoint()
    assert asyncio.run(credentials(endpoint).token()) == "tok-1"
    (request,) = endpoint.requests
    assert request.method == "POST"
    assert str(request.url) == TOKEN_URL
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {
        "grant_type": ["client_credentials"],
        "client_id": ["app-id"],
        "client_secret": ["s3cret"],
        "scope": [SCOPE],
        "client_info": ["1"],  # MSAL asks for it on every grant
    }


def test_token_is_cached_until_refresh_margin():
    endpoint, clock = TokenEndpoint(expires_in=3600), Clock()
    provider = credentials(endpoint, clock=clock, refresh_margin=300)

    async def scenario() -> list[str]:
        tokens = [await provider.token()]
        clock.now = 3299.0
        tokens.append(await provider.token())
        clock.now = 3300.0  # within 300 s of expiry
        tokens.append(await provider.token())
        tokens.append(await provider.token())
        return tokens

    assert asyncio.run(scenario()) == ["tok-1", "tok-1", "tok-2", "tok-2"]
    assert provider.fetches == 2


def test_short_lived_tokens_are_kept_for_half_their_life():
    endpoint, clock = TokenEndpoint(expires_in="120"), Clock()
    provider = credentials(endpoint, clock=clock, refresh_margin=300)

    async def scenario() -> list[str]:
        tokens = [await provider.token()]
        clock.now = 59.0
        tokens.append(await provider.token())
        clock.now = 60.0
        tokens.append(await provider.token())
        return tokens

    assert asyncio.run(scenario()) == ["tok-1", "tok-1", "tok-2"]


def test_an_unparseable_expires_in_is_an_auth_error():
    """MSAL reads the token answer and refuses a lifetime that is not a number."""
    provider = credentials(TokenEndpoint(expires_in="soon"))
    with pytest.raises(AuthError, match=r"cannot get a token from https://login\.microsoftonline"):
        asyncio.run(provider.token())


def test_concurrent_callers_share_one_refresh():
    endpoint, clock = TokenEndpoint(), Clock()
    provider = credentials(endpoint, clock=clock)

    async def scenario() -> list[str]:
        first = await asyncio.gather(*(provider.token() for _ in range(20)))
        clock.now = 4000.0
        second = await asyncio.gather(*(provider.token() for _ in range(20)))
        return [*first, *second]

    assert asyncio.run(scenario()) == ["tok-1"] * 20 + ["tok-2"] * 20
    assert len(endpoint.requests) == 2


def test_invalidate_forces_a_new_token():
    endpoint = TokenEndpoint()
    provider = credentials(endpoint)

    async def scenario() -> list[str]:
        first = await provider.token()
        provider.invalidate()
        return [first, await provider.token()]

    assert asyncio.run(scenario()) == ["tok-1", "tok-2"]


def test_token_endpoint_refusal_names_status_and_code_but_not_the_secret():
    refusal = httpx.Response(
        401,
        json={
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided: s3cret-value.\r\n"
            "Trace ID: 0000",
        },
    )
    provider = credentials(TokenEndpoint(answers=[refusal]), secret="s3cret-value")
    with pytest.raises(AuthError) as info:
        asyncio.run(provider.token())
    message = str(info.value)
    assert "HTTP 401 invalid_client" in message
    assert "AADSTS7000215" in message
    assert "s3cret-value" not in message
    assert "Trace ID" not in message
    assert info.value.url == f"/{TENANT}/oauth2/v2.0/token"
    assert not info.value.retryable


def test_client_credentials_need_all_three_values():
    with pytest.raises(AuthError, match="client secret"):
        ClientCredentials(TENANT, "app-id", "", SCOPE)


def test_long_token_endpoint_descriptions_are_shortened():
    refusal = httpx.Response(400, json={"error": "invalid_request", "error_description": "x" * 900})
    with pytest.raises(AuthError) as info:
        asyncio.run(credentials(TokenEndpoint(answers=[refusal])).token())
    assert str(info.value).endswith("x…")
    assert len(str(info.value)) < 450


def test_token_endpoint_refusal_without_description():
    refusal = httpx.Response(400, json={"error": "invalid_scope"})
    with pytest.raises(AuthError, match=r"HTTP 400 invalid_scope$"):
        asyncio.run(credentials(TokenEndpoint(answers=[refusal])).token())


def test_token_endpoint_html_error_is_retryable_auth_error():
    page = httpx.Response(503, text="<title>Down</title>", headers={"content-type": "text/html"})
    with pytest.raises(AuthError) as info:
        asyncio.run(credentials(TokenEndpoint(answers=[page])).token())
    assert "answered HTTP 503 (text/html: Down)" in str(info.value)
    assert info.value.retryable


def test_token_endpoint_without_access_token():
    answer = httpx.Response(200, json={"token_type": "Bearer"})
    with pytest.raises(AuthError, match="without an access_token"):
        asyncio.run(credentials(TokenEndpoint(answers=[answer])).token())


def test_token_endpoint_unreachable():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -2] Name or service not known")

    with pytest.raises(AuthError) as info:
        asyncio.run(credentials(refuse).token())
    assert "cannot reach the token endpoint https://login.microsoftonline.com" in str(info.value)
    assert "Name or service not known" in str(info.value)
    assert info.value.retryable
    assert info.value.__context__ is None


def test_client_retries_a_failing_token_endpoint():
    # Retry-After: 0, or MSAL answers the retry itself from its throttle (5 s without one).
    endpoint = TokenEndpoint(answers=[httpx.Response(503, text="", headers={"Retry-After": "0"})])
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    api_calls: list[httpx.Request] = []

    def api(request: httpx.Request) -> httpx.Response:
        api_calls.append(request)
        return httpx.Response(200, json={"value": []})

    async def scenario() -> None:
        retry = RetryPolicy(sleep=sleep, jitter=0.0)
        provider = credentials(endpoint)
        async with DataverseClient(
            BASE, auth=provider, transport=httpx.MockTransport(api), retry=retry
        ) as client:
            assert await client.list("queues") == []

    asyncio.run(scenario())
    assert sleeps == [0.5]
    assert len(endpoint.requests) == 2
    assert [r.headers["authorization"] for r in api_calls] == ["Bearer tok-2"]


def test_401_with_client_credentials_refreshes_the_token_once():
    endpoint = TokenEndpoint()
    seen: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        if request.headers["authorization"] == "Bearer tok-1":
            return httpx.Response(401)
        return httpx.Response(200, json={"value": [{"a": 1}]})

    async def scenario() -> DataverseClient:
        async with DataverseClient(
            BASE, auth=credentials(endpoint), transport=httpx.MockTransport(api)
        ) as client:
            assert await client.list("queues") == [{"a": 1}]
            return client

    client = asyncio.run(scenario())
    assert seen == ["Bearer tok-1", "Bearer tok-2"]
    assert client.stats.total == 2
    assert client.stats.retries == 1


def test_second_401_is_final():
    endpoint = TokenEndpoint()
    api_calls: list[httpx.Request] = []

    def api(request: httpx.Request) -> httpx.Response:
        api_calls.append(request)
        return httpx.Response(401)

    async def scenario() -> None:
        async with DataverseClient(
            BASE, auth=credentials(endpoint), transport=httpx.MockTransport(api)
        ) as client:
            await client.who_am_i()

    with pytest.raises(Unauthorized) as info:
        asyncio.run(scenario())
    assert len(api_calls) == 2
    assert len(endpoint.requests) == 2
    assert info.value.status == 401


def test_401_with_static_token_and_403_are_final():
    api_calls: list[httpx.Request] = []

    def api(request: httpx.Request) -> httpx.Response:
        api_calls.append(request)
        return httpx.Response(403 if len(api_calls) > 1 else 401)

    async def scenario() -> None:
        async with DataverseClient(
            BASE, auth=StaticToken("t"), transport=httpx.MockTransport(api)
        ) as client:
            with pytest.raises(Unauthorized):
                await client.who_am_i()
            assert len(api_calls) == 1
            with pytest.raises(Unauthorized):
                await client.who_am_i()
            assert len(api_calls) == 2

    asyncio.run(scenario())
    endpoint = TokenEndpoint()

    async def forbidden() -> None:
        async with DataverseClient(
            BASE, auth=credentials(endpoint), transport=httpx.MockTransport(api)
        ) as client:
            await client.who_am_i()

    with pytest.raises(Unauthorized) as info:
        asyncio.run(forbidden())
    assert info.value.status == 403
    assert len(endpoint.requests) == 1  # 403 is not a stale token


def test_auth_from_environment_prefers_dataverse_token():
    token = jwt("https://contoso.crm4.dynamics.com")
    env = {
        "DATAVERSE_TOKEN": token,
        "AZURE_TENANT_ID": "t",
        "AZURE_CLIENT_ID": "c",
        "AZURE_CLIENT_SECRET": "s",
    }
    provider = auth_from_environment("https://contoso.crm4.dynamics.com", env)
    assert isinstance(provider, StaticToken)
    assert asyncio.run(provider.token()) == token


def test_auth_from_environment_client_credentials():
    env = {"AZURE_TENANT_ID": TENANT, "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "s"}
    provider = auth_from_environment("https://contoso.crm4.dynamics.com/api/data/v9.2/", env)
    assert isinstance(provider, ClientCredentials)
    assert provider.scope == SCOPE
    assert provider.token_url == TOKEN_URL
    assert provider.client_id == "c"
    for authority, expected in [
        ("https://login.microsoftonline.us/", "https://login.microsoftonline.us"),
        ("login.chinacloudapi.cn", "https://login.chinacloudapi.cn"),
    ]:
        provider = auth_from_environment(
            "https://org.crm.dynamics.com", {**env, "AZURE_AUTHORITY_HOST": authority}
        )
        assert isinstance(provider, ClientCredentials)
        assert provider.authority == expected
        assert provider.scope == "https://org.crm.dynamics.com/.default"


def test_auth_from_environment_explains_what_to_set():
    with pytest.raises(AuthError) as info:
        auth_from_environment("https://org.crm.dynamics.com", {"DATAVERSE_TOKEN": " "})
    message = str(info.value)
    assert "DATAVERSE_TOKEN" in message
    assert "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET" in message
    either = r"AZURE_CLIENT_SECRET \(or AZURE_CLIENT_CERTIFICATE_PATH\)"
    with pytest.raises(AuthError, match=rf"set AZURE_CLIENT_ID, {either} as well"):
        auth_from_environment("https://org.crm.dynamics.com", {"AZURE_TENANT_ID": "t"})
    env = {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "s"}
    with pytest.raises(AuthError, match="cannot derive a token scope"):
        auth_from_environment("org.crm.dynamics.com", env)


# -- secrets never leak ---------------------------------------------------------------------------

TOKEN_MARKER = "TOKEN-MARKER-4f1d9c"
SECRET_MARKER = "SECRET-MARKER-8b27e0"
ISSUED_MARKER = "ISSUED-TOKEN-MARKER-77aa"
BODY_MARKER = "BODY-MARKER-channel-secret-31"
MARKERS = (TOKEN_MARKER, SECRET_MARKER, ISSUED_MARKER, BODY_MARKER)


def exception_texts(error: BaseException) -> list[str]:
    texts: list[str] = []
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), repr(current.args)]
        pending += [current.__cause__, current.__context__]
    return texts


def dataverse(request: httpx.Request) -> httpx.Response:
    """Answers by path: ok, 401, 500 or a dropped connection."""
    path = request.url.path.rsplit("/", 1)[-1]
    if path.startswith("ok"):
        return httpx.Response(200, json={"value": []})
    if path.startswith("unauthorized"):
        return httpx.Response(401, json={"error": {"code": "0x80044151", "message": "denied"}})
    if path.startswith("broken"):
        return httpx.Response(500, json={"error": {"code": "0x80040216", "message": "crash"}})
    raise httpx.ConnectError("Connection reset by peer", request=request)


def test_no_secret_reaches_logs_messages_or_reprs(caplog):
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    reprs: list[str] = []

    def token_endpoint(request: httpx.Request) -> httpx.Response:
        if b"bad-client" in request.content:
            body = {"error": "invalid_client", "error_description": f"bad {SECRET_MARKER}"}
            return httpx.Response(400, json=body)
        return httpx.Response(200, json={"access_token": ISSUED_MARKER, "expires_in": 3599})

    static = StaticToken(TOKEN_MARKER)
    good = ClientCredentials(TENANT, "app", SECRET_MARKER, SCOPE, transport=entra(token_endpoint))
    bad = ClientCredentials(
        TENANT, "bad-client", SECRET_MARKER, SCOPE, transport=entra(token_endpoint)
    )

    async def scenario() -> None:
        for provider in (static, good, bad):
            client = DataverseClient(
                BASE,
                auth=provider,
                transport=httpx.MockTransport(dataverse),
                retry=RetryPolicy(max_attempts=2, sleep=lambda _: asyncio.sleep(0)),
            )
            reprs.extend([repr(client), repr(provider), repr(client.stats), repr(client.retry)])
            async with client:
                for path in ("ok", "unauthorized", "broken", "reset"):
                    try:
                        await client.upsert(path, "1", {"secret": BODY_MARKER})
                        await client.list(path, filter=f"name eq '{path}'")
                    except DataverseError as error:
                        errors.append(error)
                try:
                    await client.batch([])
                    await client.create("unauthorized", {"secret": BODY_MARKER})
                except DataverseError as error:
                    errors.append(error)

    asyncio.run(scenario())
    assert {type(e) for e in errors} == {Unauthorized, ServerError, TransportError, AuthError}
    assert len(errors) == 4 + 4 + 5  # static, good: three paths and the create fail; bad: all
    texts = [t for e in errors for t in exception_texts(e)]
    texts += reprs
    texts += [record.getMessage() for record in caplog.records]
    texts += [repr(record.args) for record in caplog.records]
    assert any("GET ok" in t for t in texts)  # the debug log did record the traffic
    for text in texts:
        for marker in MARKERS:
            assert marker not in text, text


@pytest.mark.parametrize("token", ["abc\n", "a b", "tök", "x\r\nX-Evil: 1"])
def test_a_token_a_header_cannot_carry_is_refused_without_echoing_it(token):
    with pytest.raises(AuthError, match="characters a header cannot carry") as caught:
        StaticToken(token)
    assert token.strip() not in str(caught.value)


def test_the_environment_token_is_stripped_of_surrounding_whitespace():
    token = jwt("https://org.crm.dynamics.com")
    provider = auth_from_environment(
        "https://org.crm.dynamics.com", {"DATAVERSE_TOKEN": f" {token}\n"}
    )
    assert asyncio.run(provider.token()) == token


def test_string_literals_of_a_filter_are_masked_in_messages_and_logs(caplog):
    caplog.set_level(logging.DEBUG)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": {"code": "0x80060888", "message": "bad"}})

    async def scenario() -> str:
        async with DataverseClient(
            "https://org.crm.dynamics.com/api/data/v9.2/",
            auth=StaticToken("t"),
            transport=httpx.MockTransport(answer),
        ) as client:
            with pytest.raises(BadRequest) as caught:
                await client.list(
                    "msdyn_ocfbpages", filter="msdyn_fbpageaccesstoken eq 'EAAB-it''s'"
                )
            return str(caught.value)

    message = asyncio.run(scenario())
    assert message.startswith("GET msdyn_ocfbpages?$filter=msdyn_fbpageaccesstoken eq '…': 400")
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("reconciler")]
    assert ours
    assert not [line for line in ours if "EAAB" in line]
