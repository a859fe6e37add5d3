"""A synthetic project of any size, for the benchmarks and the apply resilience tests.

Queues 40 % of the manifests, Facebook accounts 15 % (two pages each), workstreams 30 %, rule
sets 14 %, capacity profiles 1 %. One manifest can make several records (plan changes): an
account makes itself and its pages (3), a workstream makes itself, its contract, its routing
configuration and its capacity profile row (4: every workstream is profile-based, as
Microsoft recommends one way for a whole org, and about twenty share a profile), a rule set
makes itself and its routing step (2), a queue and a profile make 1. Rule sets hold 5 to 50
rules (``rules_in``), each a condition group routing to a queue. ``RECORDS_PER_DOCUMENT`` is
the resulting average; ``documents_for(records)`` inverts it.

With ``members`` (the bench), each queue lists that many members, drawn from as many users as
there are queues (``users``): every user is in about ``members`` queues. The target must hold
the users (``add_users``) before a plan.

Importable from the tests (``tests/`` is on ``sys.path`` under pytest) and from the bench
scripts, which put ``tests/`` on ``sys.path`` themselves::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import synthetic

Secrets are ``{"fromEnv": SECRET_VARIABLE}``: set it (``environ()`` does) before planning.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

SECRET_VARIABLE = "BENCH_SECRET"
SECRET = {"fromEnv": SECRET_VARIABLE}
NAMESPACE = "6f1d2a9e-3c4b-4e5f-8a7b-1c2d3e4f5a6b"

RECORDS = {
    "Queue": 1,
    "FacebookAccount": 3,
    "Workstream": 4,
    "RoutingRuleSet": 2,
    "CapacityProfile": 1,
}
"""Records (plan changes) one manifest of each kind makes."""
SHARES = {
    "Queue": 40,
    "FacebookAccount": 15,
    "Workstream": 30,
    "RoutingRuleSet": 14,
    "CapacityProfile": 1,
}
"""Percent of the manifests of each kind."""
RECORDS_PER_DOCUMENT = sum(RECORDS[kind] * share for kind, share in SHARES.items()) / 100


def counts(documents: int) -> dict[str, int]:
    """Manifests of each kind in a project of ``documents`` manifests (at least one each;
    no more workstreams than pages, no more rule sets than workstreams)."""
    n = {kind: max(1, documents * share // 100) for kind, share in SHARES.items()}
    n["Workstream"] = min(n["Workstream"], 2 * n["FacebookAccount"])
    n["RoutingRuleSet"] = min(n["RoutingRuleSet"], n["Workstream"])
    return n


def record_count(documents: int) -> int:
    """The records (plan changes) a project of ``documents`` manifests makes."""
    return sum(RECORDS[kind] * n for kind, n in counts(documents).items())


def documents_for(wanted: int) -> int:
    """The fewest manifests whose project makes at least ``wanted`` records."""
    documents = max(1, int(wanted / RECORDS_PER_DOCUMENT) - 2)
    while record_count(documents) < wanted:
        documents += 1
    return documents


def _document(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "reconciler.omnichannel/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }


def queue(i: int, *, description: str | None = None, priority: int | None = None) -> dict[str, Any]:
    return _document(
        "Queue",
        f"queue-{i}",
        {
            "priority": priority if priority is not None else 1 + i % 50,
            "description": description if description is not None else f"Queue number {i}",
        },
    )


def account(i: int) -> dict[str, Any]:
    pages = [
        {"name": f"Page {i}-{p}", "pageId": str(10**14 + i * 10 + p), "accessToken": SECRET}
        for p in range(2)
    ]
    return _document(
        "FacebookAccount",
        f"account-{i}",
        {"applicationId": str(10**13 + i), "applicationSecret": SECRET, "pages": pages},
    )


def profile(i: int) -> dict[str, Any]:
    return _document(
        "CapacityProfile",
        f"profile-{i}",
        {
            "displayName": f"Profile {i}",
            "defaultMaxUnits": 1 + i % 5,
            "blockAssignment": i % 2 == 0,
        },
    )


def workstream(
    i: int,
    queues: int,
    accounts: int,
    profiles: int = 0,
    *,
    capacity: int = 10,
    max_concurrency: int = 2,
) -> dict[str, Any]:
    """A Facebook workstream: profile-based with ``profiles`` (one of them), else ``capacity``
    units."""
    units: dict[str, Any] = {"units": capacity}
    if profiles:
        units = {"profiles": [f"profile-{i % profiles}"]}
    return _document(
        "Workstream",
        f"workstream-{i}",
        {
            "channel": "facebook",
            "fallbackQueue": f"queue-{i % queues}",
            "distribution": {
                "mode": "push",
                "capacity": units,
                "maxConcurrency": max_concurrency,
            },
            "allowedPresences": ["available", "busy"],
            "autoCloseAfterInactivity": "1d",
            "facebook": {
                "account": f"account-{i // 2 % accounts}",
                "page": f"Page {i // 2 % accounts}-{i % 2}",
                "language": "en-US",
                "fileAttachments": {"customer": True},
            },
        },
    )


def rules_in(i: int) -> int:
    """Rules in the ``i``-th rule set: 5 to 50, spread evenly (27.5 on average)."""
    return 5 + i * 17 % 46


def rule_set(i: int, queues: int, workstreams: int) -> dict[str, Any]:
    rules = [
        {
            "name": f"rule {r}",
            "when": {
                "any": [
                    {"field": "facebook.locale", "op": "equals", "value": f"l{r}"},
                    {"field": "facebook.customerName", "op": "in", "value": ["a", "b", str(r)]},
                ]
            },
            "routeTo": f"queue-{(i + r) % queues}",
        }
        for r in range(rules_in(i))
    ]
    return _document(
        "RoutingRuleSet",
        f"rules-{i}",
        {"workstream": f"workstream-{i % workstreams}", "type": "route-to-queue", "rules": rules},
    )


def user(i: int) -> str:
    """The sign-in name of the ``i``-th user of a synthetic org."""
    return f"agent-{i}@contoso.example"


def users(documents: int) -> int:
    """The users a project of ``documents`` manifests names as members: one per queue."""
    return counts(documents)["Queue"]


def project(documents: int, *, members: int = 0) -> list[dict[str, Any]]:
    """The manifests of a project of about ``documents`` manifests (see the module doc).

    Each workstream uses one page, and each page at most one workstream: with 30 % workstreams
    and 15 % accounts of two pages, every page serves exactly one workstream. Rule sets go to
    distinct workstreams (at most one route-to-queue set per workstream).
    """
    n = counts(documents)
    queues, accounts = n["Queue"], n["FacebookAccount"]
    workstreams, rule_sets = n["Workstream"], n["RoutingRuleSet"]
    profiles = n["CapacityProfile"]
    out = [queue(i) for i in range(queues)]
    if members:
        for i, document in enumerate(out):
            chosen = sorted({(i * 7 + m * 13) % queues for m in range(members)})
            document["spec"]["members"] = [user(u) for u in chosen]
    out += [account(i) for i in range(accounts)]
    out += [profile(i) for i in range(profiles)]
    out += [workstream(i, queues, accounts, profiles) for i in range(workstreams)]
    out += [rule_set(i, queues, workstreams) for i in range(rule_sets)]
    return out


async def add_users(client: Any, count: int) -> None:
    """Create the users ``user(0)`` … ``user(count - 1)`` in the target (``systemusers``, as an
    org's users come from Entra ID), in ``$batch`` requests of 1,000."""
    from reconciler.dataverse.batch import BatchRequest, ChangeSet

    for start in range(0, count, 1000):
        creates = [
            BatchRequest(
                "POST",
                "systemusers",
                {"domainname": user(i), "firstname": "Agent", "lastname": str(i)},
            )
            for i in range(start, min(count, start + 1000))
        ]
        await client.batch([ChangeSet(creates)])


def revised(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``documents`` with every queue's description and every workstream's concurrency changed:
    planned against a target that holds ``documents``, a plan of updates only."""
    out = copy.deepcopy(documents)
    for document in out:
        spec = document["spec"]
        if document["kind"] == "Queue":
            spec["description"] = f"{spec['description']} (revised)"
        elif document["kind"] == "Workstream":
            spec["distribution"]["maxConcurrency"] += 1
    return out


def write(folder: Path, documents: list[dict[str, Any]], *, namespace: str = NAMESPACE) -> Path:
    """Write ``documents`` as ``project.yaml`` and a ``reconciler.yaml`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "reconciler.yaml").write_text(yaml.safe_dump({"namespace": namespace}))
    (folder / "project.yaml").write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return folder


def write_project(
    folder: Path, *, records: int | None = None, documents: int | None = None, members: int = 0
) -> int:
    """Write a synthetic project of about ``records`` records (or exactly ``documents``
    manifests) into ``folder``; return the number of records it makes."""
    if (records is None) == (documents is None):
        raise ValueError("give records or documents")
    count = documents if documents is not None else documents_for(records or 0)
    write(folder, project(count, members=members))
    return record_count(count)


def environ(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default ``os.environ``) with the synthetic secret set."""
    return {**(os.environ if base is None else base), SECRET_VARIABLE: "bench-secret-value"}


class QuietUi:
    """The ``apply`` Ui for unattended runs: shows nothing, always goes ahead, counts steps."""

    def __init__(self) -> None:
        self.steps = 0
        self.results: list[Any] = []

    def show(self, plan: Any) -> None:
        pass

    def confirm(self, plan: Any) -> bool:
        return True

    def started(self, steps: Any) -> None:
        self.steps = len(steps)

    def finished(self, result: Any) -> None:
        self.results.append(result)
