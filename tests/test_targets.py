"""Targets (spec §3): parsing, precedence, and the client each one gets."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from reconciler.dataverse import AuthError, DataverseClient
from reconciler.errors import UsageError
from reconciler.targets import Target, choose_target, connect, parse_target


@pytest.mark.parametrize(
    ("text", "kind", "url", "base_url"),
    [
        ("local", "local", "local:.reconciler/local.db", "http://local.emulator/api/data/v9.2/"),
        (
            "local:state/dev.db",
            "local",
            "local:state/dev.db",
            "http://local.emulator/api/data/v9.2/",
        ),
        (
            "http://127.0.0.1:8123",
            "http",
            "http://127.0.0.1:8123",
            "http://127.0.0.1:8123/api/data/v9.2/",
        ),
        ("http://localhost:9/", "http", "http://localhost:9", "http://localhost:9/api/data/v9.2/"),
        (
            "https://Contoso.crm4.dynamics.com/",
            "https",
            "https://contoso.crm4.dynamics.com",
            "https://contoso.crm4.dynamics.com/api/data/v9.2/",
        ),
        (
            "https://contoso.crm.dynamics.com/api/data/v9.2",
            "https",
            "https://contoso.crm.dynamics.com",
            "https://contoso.crm.dynamics.com/api/data/v9.2/",
        ),
    ],
)
def test_parse_target(text: str, kind: str, url: str, base_url: str) -> None:
    target = parse_target(text)
    assert (target.kind, target.url, target.base_url, str(target)) == (kind, url, base_url, url)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("ftp://host", "is not a target"),
        ("contoso.crm.dynamics.com", "is not a target"),
        ("local:", "names no database file"),
        ("http://contoso.example.com:8123", "only allowed for an emulator on loopback"),
        ("https://user:pw@contoso.crm.dynamics.com", "must not carry credentials"),
        ("https://contoso.crm.dynamics.com/main.aspx", "must be the org's root URL"),
        ("https://contoso.crm.dynamics.com/?x=1", "must not carry a query"),
        ("http://127.0.0.1:99999", "has an invalid port"),
    ],
)
def test_parse_target_refuses(text: str, why: str) -> None:
    with pytest.raises(UsageError, match=why) as caught:
        parse_target(text)
    assert "pw" not in str(caught.value)  # a password on the command line is never echoed


def test_choose_target_precedence() -> None:
    env = {"RECONCILER_TARGET": "http://127.0.0.1:1"}
    assert choose_target("local:a.db", env, "local:b.db").url == "local:a.db"
    assert choose_target(None, env, "local:b.db").url == "http://127.0.0.1:1"
    assert choose_target(None, {}, "local:b.db").url == "local:b.db"
    assert choose_target(None, {}, None) == Target(
        "local", "local:.reconciler/local.db", Path(".reconciler/local.db")
    )


def test_local_target_runs_in_process_and_keeps_state(tmp_path: Path) -> None:
    target = parse_target(f"local:{tmp_path / 'org.db'}")

    async def first() -> tuple[str, str]:
        async with connect(target, {}) as client:
            assert isinstance(client, DataverseClient)
            me = await client.who_am_i()
            new_id = await client.create("queues", {"name": "Kept"})
            assert isinstance(new_id, str)
            return me.organization_id, new_id

    async def second(queue_id: str) -> tuple[str, str]:
        async with connect(target, {}) as client:
            row = await client.get("queues", queue_id, select=["name"])
            return (await client.who_am_i()).organization_id, row["name"]

    organization, queue_id = asyncio.run(first())
    assert asyncio.run(second(queue_id)) == (organization, "Kept")
    assert (tmp_path / "org.db").exists()


def test_https_target_without_credentials_says_what_to_set() -> None:
    target = parse_target("https://contoso.crm4.dynamics.com")

    async def go() -> None:
        async with connect(target, {}):
            pass  # pragma: no cover - connect refuses first

    with pytest.raises(AuthError, match="DATAVERSE_TOKEN"):
        asyncio.run(go())


def test_a_file_that_is_not_an_emulator_database_is_refused(tmp_path: Path) -> None:
    from reconciler.emulator.store import Store, StoreError

    garbage = tmp_path / "notes.db"
    garbage.write_text("not sqlite at all, but long enough to have a header " * 4)
    with pytest.raises(StoreError, match="is not an emulator database"):
        Store(garbage)
    store = Store(tmp_path / "old.db")
    store.initialise(lambda s: None)
    store.set_meta("schema", "0")
    store.close()
    with pytest.raises(StoreError, match=r"another emulator version \(schema 0"):
        Store(tmp_path / "old.db")


def test_a_second_open_of_the_database_does_not_seed_it_again(tmp_path: Path) -> None:
    from reconciler.emulator import create_app

    first, second = create_app(tmp_path / "org.db"), create_app(tmp_path / "org.db")
    assert first.store.meta("organizationid") == second.store.meta("organizationid")
    from reconciler.dataverse.tables import TABLES

    assert second.store.count(TABLES["msdyn_oclanguage"]) == first.store.count(
        TABLES["msdyn_oclanguage"]
    )
    assert first.store.count(TABLES["queue"]) == 3


def test_the_local_target_has_no_request_window_limits(tmp_path: Path) -> None:
    """A sandbox: 6,000 requests per 5 minutes would only make a large apply wait."""
    target = parse_target(f"local:{tmp_path / 'org.db'}")

    async def config() -> object:
        async with connect(target, {}) as client:
            await client.who_am_i()
            return client._http._transport.app.config  # type: ignore[attr-defined]

    found = asyncio.run(config())
    assert found.max_requests > 10**15  # type: ignore[attr-defined]
    assert found.max_execution_seconds == float("inf")  # type: ignore[attr-defined]
