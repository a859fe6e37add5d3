"""``make bench``: plan a synthetic 1,000-manifest project against the local target.

Prints wall times and request counts for an empty target and for one that already matches
(every record read and compared). Figures, not assertions: tests check behaviour.

    python tests/bench/plan_bench.py [--documents N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import yaml

from reconciler.mapping import kinds as k
from reconciler.mapping.fields import body
from reconciler.plan.identity import identify
from reconciler.plan.planner import PlanOptions, make_plan_async, prepare
from reconciler.state.reader import read_snapshot
from reconciler.targets import connect

SECRET = {"fromEnv": "BENCH_SECRET"}


def project(documents: int) -> list[dict[str, object]]:
    """Queues 40 %, Facebook accounts 15 % (two pages each), workstreams 30 %, rule sets 15 %."""
    queues, accounts = documents * 40 // 100, documents * 15 // 100
    workstreams, rule_sets = documents * 30 // 100, documents * 15 // 100
    out: list[dict[str, object]] = []

    def doc(kind: str, name: str, spec: dict[str, object]) -> None:
        out.append(
            {
                "apiVersion": "reconciler.omnichannel/v1",
                "kind": kind,
                "metadata": {"name": name},
                "spec": spec,
            }
        )

    for i in range(queues):
        doc("Queue", f"queue-{i}", {"priority": 1 + i % 50, "description": f"Queue number {i}"})
    for i in range(accounts):
        pages = [
            {"name": f"Page {i}-{p}", "pageId": str(10**14 + i * 10 + p), "accessToken": SECRET}
            for p in range(2)
        ]
        doc(
            "FacebookAccount",
            f"account-{i}",
            {"applicationId": str(10**13 + i), "applicationSecret": SECRET, "pages": pages},
        )
    for i in range(workstreams):
        doc(
            "Workstream",
            f"workstream-{i}",
            {
                "channel": "facebook",
                "fallbackQueue": f"queue-{i % queues}",
                "distribution": {"mode": "push", "capacity": {"units": 10}, "maxConcurrency": 2},
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
    for i in range(rule_sets):
        rules = [
            {
                "name": f"rule {r}",
                "when": {
                    "any": [
                        {"field": "facebook.locale", "op": "beginsWith", "value": f"l{r}"},
                        {"field": "facebook.customerName", "op": "in", "value": ["a", "b", str(r)]},
                    ]
                },
                "routeTo": f"queue-{(i + r) % queues}",
            }
            for r in range(5)
        ]
        doc(
            "RoutingRuleSet",
            f"rules-{i}",
            {
                "workstream": f"workstream-{i % workstreams}",
                "type": "route-to-queue",
                "rules": rules,
            },
        )
    return out


async def fill(options: PlanOptions) -> int:
    """Create every record, as a perfect apply would (the applier is benchmarked separately)."""
    prepared = prepare(options)
    async with connect(prepared.target, options.environ) as client:
        snapshot = await read_snapshot(client)
        identity = identify(prepared.records, snapshot, prepared.report.project.namespace)
        created = 0
        for kind in k.KINDS:
            for entry in identity.entries:
                if entry.record.kind is kind and entry.row is None:
                    row = kind.to_row(entry.record.fields, entry.record.address, identity.resolver)
                    await client.create(kind.table.entity_set, body(kind.table, row))
                    created += 1
        return created


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=1000)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "project.yaml").write_text(yaml.safe_dump_all(project(arguments.documents)))
        environ = {**os.environ, "BENCH_SECRET": "bench-secret-value"}
        options = PlanOptions(
            paths=[str(root)], target=f"local:{root / 'bench.db'}", environ=environ
        )
        for label in ("empty target", "matching target"):
            if label == "matching target":
                started = time.perf_counter()
                records = await fill(options)
                print(
                    f"  (filled the target with {records} records in "
                    f"{time.perf_counter() - started:.2f} s)"
                )
            started = time.perf_counter()
            plan = await make_plan_async(options)
            elapsed = time.perf_counter() - started
            summary = plan.summary
            print(
                f"plan, {label}: {arguments.documents} manifests → {len(plan.changes)} records, "
                f"{elapsed:.2f} s wall, {plan.requests} requests "
                f"(create {summary.create}, update {summary.update}, noop {summary.noop})"
            )


if __name__ == "__main__":
    asyncio.run(main())
