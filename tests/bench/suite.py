"""``make bench``: validate, plan and apply synthetic projects of 100, 1,000 and 10,000 records.

For each size N (``tests/synthetic.py``: queues with ``MEMBERS`` members each, Facebook accounts
with two pages, capacity profiles, profile-based workstreams, rule sets of 5 to 50 rules), every
figure comes from the real CLI in its own process, timed from start to exit (start-up
included), with its peak resident memory. Every target is given the users the members name
first (``synthetic.add_users``, not timed), as an org has its users before a project names them:

- ``validate PROJECT``;
- ``plan`` against an empty local target, and against a local target that already holds the
  project (filled by ``apply``), with the requests each made against the lower bound: one
  request per page of each table read (5,000 rows a page; the users too), plus ``WhoAmI``
  and the ledger's one query;
- ``apply --parallelism P`` (P = 1, 8, 32) to a served emulator answering every request after
  ``--latency-ms 20``, a fresh database each time, against the bound ``requests x 20 ms / P``;
  then ``plan --detailed-exitcode`` must find nothing left to change (that no-op plan, against
  the served emulator, is the one the ledger's share of a plan is taken of). These runs lift
  the emulator's request-count limit (6,000 per 5 minutes): they measure overlap, not
  throttling;
- **the ledger** (``reconciler/state/ledger.py``) is measured in this process, against the
  served emulator of the first apply (``--latency-ms 20``, holding the applied project), after
  its re-plan. Its size: the notes and characters apply wrote. A no-op plan's cost:
  ``ledger.read`` of it, and the snapshot a plan reads with and without the ledger (the query
  overlaps the table reads). A first apply's cost, done again after deleting the notes, by
  the applier's own ``_ledger`` and the plan of a first apply (made in this process against
  the empty local target): ``ledger.read`` of the empty ledger (the apply's plan), the write
  before the steps and the one after them (every step done, nothing deleted); what they write
  must equal what the apply wrote. The ledger's time in an apply is the sum of those parts
  run one after another (an upper bound: in an apply the plan's read overlaps the table
  reads). Also timed: an apply pruning one record (the write before the steps, then one
  dropping an entry), and ``WhoAmI``, the floor of any read on that emulator. The client counts
  the requests (``client.stats``, by method); times are medians of ``--ledger-repeats`` runs.
  Shares are of the apply's requests (its own and its plan's) and wall time at each
  parallelism, and of the re-plan's requests and wall time;
- once, ``apply`` of the 1,000-record project to an emulator whose service-protection limit is
  Dataverse's rate scaled down ten times (600 requests per 30 s): how long throttling costs;
  and once at ``--parallelism 8`` with ``--latency-ms 100``, nearer a real org's latency.

Prints the tables and writes every figure to ``--json`` (default ``.reconciler/bench.json``).
Figures, not assertions: tests check behaviour. Goals are in ``docs/performance.md``.

    python tests/bench/suite.py [--sizes 100,1000,10000] [--parallelism 1,8,32] [--ledger-repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.apply import applier
from reconciler.dataverse.client import MAX_PAGE_SIZE, DataverseClient
from reconciler.mapping.kinds import KINDS
from reconciler.plan.definition import Plan
from reconciler.plan.planner import PlanOptions, make_plan_async
from reconciler.state import ledger
from reconciler.state.reader import read_snapshot
from reconciler.targets import connect, parse_target

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the shared helpers
import synthetic
from served import Served

ROOT = Path(__file__).resolve().parents[2]
PEAK = Path(__file__).resolve().parent / "peak.py"
SUMMARY = re.compile(
    r"^Apply complete: .*\((\d+) steps?, (\d+) requests? in ([\d.]+) s\)\.$", re.MULTILINE
)
READ = re.compile(r"^Read the target in (\d+) requests?\.$", re.MULTILINE)
UNLIMITED = ("--max-requests", str(10**9))
THROTTLED = ("--max-requests", "600", "--window-seconds", "30")


@dataclass
class Ran:
    """One CLI process: wall seconds, peak resident memory and what it printed."""

    wall: float
    peak_mb: float
    cpu: float
    """User and system CPU seconds of the process."""
    code: int
    stdout: str = field(repr=False)
    stderr: str = field(repr=False)


def reconciler(*args: str, environ: dict[str, str], work: Path) -> Ran:
    """Run ``reconciler ARGS`` and measure it: wall time, CPU (``wait4``) and peak memory
    (``peak.py``: its own high-water mark, not the bench's memory it was forked from)."""
    out, err, peak = work / "stdout.txt", work / "stderr.txt", work / "peak.txt"
    peak.unlink(missing_ok=True)
    with out.open("wb") as stdout, err.open("wb") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, str(PEAK), str(peak), *args, "--no-color"],
            stdout=stdout,
            stderr=stderr,
            env=environ,
            cwd=work,
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    peak_mb = int(peak.read_text()) / 1024 if peak.exists() else math.nan
    return Ran(wall, peak_mb, cpu, process.returncode, out.read_text(), err.read_text())


def checked(ran: Ran, what: str, *codes: int) -> Ran:
    if ran.code not in (codes or (0,)):
        sys.exit(f"{what} failed (exit {ran.code}):\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}")
    return ran


async def lower_bound(target: str) -> dict[str, int]:
    """Rows per table the plan reads, from the target itself (not counted anywhere)."""
    async with connect(parse_target(target), synthetic.environ()) as client:
        snapshot = await read_snapshot(client)
    return {kind: len(rows) for kind, rows in snapshot.rows.items()} | {
        "languages": len(snapshot.languages),
        "users": len(snapshot.users),
    }


MEMBERS = 3
"""Members per queue: every user is in about three queues."""


def seed_users(target: str, project: Path) -> None:
    """Give ``target`` the users ``project``'s queues name (one per queue)."""
    count = sum(
        1 for _ in re.finditer(r"(?m)^kind: Queue$", (project / "project.yaml").read_text())
    )

    async def add() -> None:
        async with connect(parse_target(target), synthetic.environ()) as client:
            await synthetic.add_users(client, count)

    asyncio.run(add())


def pages(rows: dict[str, int]) -> int:
    """Requests a plan cannot do without: a page per 5,000 rows of each table, WhoAmI and the
    ledger's query (one: 5,000 notes, a page of answers, hold some 5 million entries)."""
    return sum(max(1, math.ceil(n / MAX_PAGE_SIZE)) for n in rows.values()) + 2


async def timed(
    client: DataverseClient, action: Callable[[], Awaitable[Any]]
) -> tuple[float, dict[str, int], Any]:
    """Run ``action`` alone on ``client``: its wall seconds, the requests it sent by method
    (counted by the client), and what it returned."""
    before = client.stats.by_method()
    started = time.perf_counter()
    value = await action()
    seconds = time.perf_counter() - started
    after = client.stats.by_method()
    sent = {m: n - before.get(m, 0) for m, n in after.items() if n - before.get(m, 0)}
    return seconds, sent, value


def summary(runs: list[tuple[float, dict[str, int], Any]]) -> dict[str, Any]:
    """Runs of ``timed``: the median seconds, every run's, and the requests of one (which must
    be the same each time)."""
    counts = {tuple(sorted(sent.items())) for _, sent, _ in runs}
    if len(counts) != 1:
        sys.exit(f"the ledger's requests differed between runs: {counts}")
    sent = runs[0][1]
    return {
        "seconds": statistics.median(s for s, _, _ in runs),
        "runs": [s for s, _, _ in runs],
        "requests": sum(sent.values()),
        "by_method": sent,
    }


async def repeated(
    client: DataverseClient, action: Callable[[], Awaitable[Any]], repeats: int
) -> dict[str, Any]:
    return summary([await timed(client, action) for _ in range(repeats)])


async def ledger_cost(url: str, first: Plan, repeats: int) -> dict[str, Any]:
    """The ledger as apply wrote it to the served emulator at ``url``, and what reading and
    writing it take there, measured (see the module's docstring). ``first`` is the plan of a
    first apply (against an empty target)."""
    namespace = uuid.UUID(synthetic.NAMESPACE)
    note = ledger.TABLE.entity_set
    async with connect(parse_target(url), synthetic.environ()) as client:
        written = await ledger.read(client, namespace)
        texts = [page.text(namespace) for page in written.pages]
        entries = [entry for page in written.pages for entry in page.entries.values()]
        result: dict[str, Any] = {
            "pages": len(written.pages),
            "chars": sum(map(len, texts)),
            "page_chars": [len(text) for text in texts],
            "entries": len(entries),
        }
        # The floor of any GET on this emulator, for comparison: WhoAmI, a few hundred bytes.
        result["get_floor"] = await repeated(client, client.who_am_i, repeats)
        # A no-op plan: one query of the whole ledger, on its own and within the snapshot.
        result["read"] = await repeated(client, lambda: ledger.read(client, namespace), repeats)
        with_, without = [], []
        for _ in range(repeats):
            with_.append((await timed(client, lambda: read_snapshot(client, namespace)))[0])
            without.append((await timed(client, lambda: read_snapshot(client)))[0])
        result["snapshot"] = {
            "with_ledger": statistics.median(with_),
            "without_ledger": statistics.median(without),
            "added": statistics.median(with_) - statistics.median(without),
        }

        # A first apply's ledger, again, by the applier's own code and plan: the plan's read
        # and the write before the steps find no ledger; the write after them, every step
        # having gone through and nothing deleted.
        async def fresh() -> None:
            for page in (await ledger.read(client, namespace)).pages:
                await client.delete(note, page.id)

        plan_reads, befores, afters = [], [], []
        for _ in range(repeats):
            await fresh()
            plan_reads.append(await timed(client, lambda: ledger.read(client, namespace)))
            befores.append(await timed(client, lambda: applier._ledger(client, first, before=True)))
            afters.append(await timed(client, lambda: applier._ledger(client, first, results=())))
        again = await ledger.read(client, namespace)
        result["reproduced"] = [page.text(namespace) for page in again.pages] == texts
        result["empty_read"] = summary(plan_reads)
        result["write"] = summary(befores) | {"notes": befores[0][2]}
        result["after"] = summary(afters) | {"notes": afters[0][2]}

        # An apply that prunes one record: its write before the steps finds every entry as it
        # is; the one after drops the deleted record's entry.
        last = entries[-1]
        unchanged = await repeated(
            client, lambda: ledger.write(client, namespace, entries), repeats
        )
        drops = []
        for _ in range(repeats):
            drops.append(
                await timed(client, lambda: ledger.write(client, namespace, (), [last.id]))
            )
            await ledger.write(client, namespace, [last])
        result["prune_one"] = {"before_steps": unchanged, "after_steps": summary(drops)}
        again = await ledger.read(client, namespace)
        if [page.text(namespace) for page in again.pages] != texts:
            result["reproduced"] = False
    return result


def plan(project: Path, target: str, environ: dict[str, str], work: Path) -> dict[str, Any]:
    ran = checked(
        reconciler(
            "plan", str(project), "--target", target, "--format", "json", environ=environ, work=work
        ),
        f"plan against {target}",
        0,
        2,
    )
    document = json.loads(ran.stdout)
    return {
        "wall": ran.wall,
        "peak_mb": ran.peak_mb,
        "requests": document["requests"],
        "summary": {k: v for k, v in document["summary"].items() if v},
    }


def apply(
    project: Path,
    work: Path,
    parallelism: int,
    latency_ms: float,
    limits: tuple[str, ...],
    ledger_repeats: int = 0,
    first: Plan | None = None,
) -> dict[str, Any]:
    """Apply ``project`` to a fresh served emulator, then plan again; with ``ledger_repeats``
    and ``first`` (the plan of a first apply), measure the ledger there too
    (``ledger_cost``)."""
    environ = synthetic.environ()
    work.mkdir()
    with Served(work / "org.db", "--latency-ms", f"{latency_ms:g}", *limits) as emulator:
        seed_users(emulator.url, project)
        ran = checked(
            reconciler(
                "apply",
                str(project),
                "--yes",
                "--parallelism",
                str(parallelism),
                "--target",
                emulator.url,
                environ=environ,
                work=work,
            ),
            f"apply --parallelism {parallelism}",
        )
        found = SUMMARY.search(ran.stdout)
        if found is None:
            sys.exit(f"no summary in the output of apply:\n{ran.stdout[-3000:]}")
        after = checked(
            reconciler(
                "plan",
                str(project),
                "--target",
                emulator.url,
                "--detailed-exitcode",
                environ=environ,
                work=work,
            ),
            "the plan after apply (exit 2: changes left)",
        )
        costs = None
        if ledger_repeats and first is not None:
            costs = asyncio.run(ledger_cost(emulator.url, first, ledger_repeats))
    read = READ.search(after.stdout)
    if read is None:
        sys.exit(f"no request count in the output of plan:\n{after.stdout[-3000:]}")
    steps, writes, inside = int(found[1]), int(found[2]), float(found[3])
    throttled = len(re.findall(r"throttl", ran.stderr, re.IGNORECASE))
    return {
        "parallelism": parallelism,
        "latency_ms": latency_ms,
        "wall": ran.wall,
        "cpu": ran.cpu,
        "peak_mb": ran.peak_mb,
        "steps": steps,
        "requests": writes,
        "seconds_applying": inside,
        "throttle_warnings": throttled,
        "replan_wall": after.wall,
        "replan_requests": int(read[1]),
    } | ({"ledger": costs} if costs is not None else {})


def measure(
    n: int, root: Path, levels: list[int], latency_ms: float, ledger_repeats: int
) -> dict[str, Any]:
    folder = root / f"n{n}"
    project = folder / "project"
    records = synthetic.write_project(project, records=n, members=MEMBERS)
    documents = synthetic.documents_for(n)
    environ = synthetic.environ()
    environ.pop("RECONCILER_TARGET", None)
    size = sum(p.stat().st_size for p in project.iterdir())
    print(f"\nN = {n}: {documents} manifests → {records} records ({size / 2**20:.1f} MiB of YAML)")

    ran = checked(reconciler("validate", str(project), environ=environ, work=folder), "validate")
    result: dict[str, Any] = {
        "n": n,
        "records": records,
        "manifests": documents,
        "yaml_bytes": size,
        "validate": {"wall": ran.wall, "peak_mb": ran.peak_mb},
    }
    print(f"  validate: {ran.wall:.2f} s, {ran.peak_mb:.0f} MB")

    seed_users(f"local:{folder / 'empty.db'}", project)
    empty = plan(project, f"local:{folder / 'empty.db'}", environ, folder)
    full_target = f"local:{folder / 'full.db'}"
    seed_users(full_target, project)
    filled = checked(
        reconciler(
            "apply", str(project), "--yes", "--target", full_target, environ=environ, work=folder
        ),
        "apply to the local target",
    )
    noop = plan(project, full_target, environ, folder)
    if set(noop["summary"]) != {"noop"}:
        sys.exit(f"the plan against the filled target is not all noop: {noop['summary']}")
    rows = asyncio.run(lower_bound(full_target))
    bound = pages(rows)
    result["plan"] = {"empty": empty, "noop": noop, "bound": bound, "rows": rows}
    result["fill_local"] = {"wall": filled.wall, "peak_mb": filled.peak_mb}
    for label, figures in (("empty target", empty), ("applied target", noop)):
        print(
            f"  plan, {label}: {figures['wall']:.2f} s, {figures['requests']} requests "
            f"(bound {bound}), {figures['peak_mb']:.0f} MB"
        )

    first = None
    if ledger_repeats:
        options = PlanOptions(
            paths=[str(project)], target=f"local:{folder / 'empty.db'}", environ=environ
        )
        first = asyncio.run(make_plan_async(options))
    runs = []
    for parallelism in levels:
        repeats = ledger_repeats if not runs else 0
        run = apply(
            project,
            folder / f"p{parallelism}",
            parallelism,
            latency_ms,
            UNLIMITED,
            repeats,
            first,
        )
        total = run["requests"] + empty["requests"]
        run["bound"] = total * latency_ms / 1000 / parallelism
        run["ratio"] = run["wall"] / run["bound"]
        runs.append(run)
        print(
            f"  apply -p {parallelism:>2}: {run['wall']:.2f} s (bound {run['bound']:.2f} s, "
            f"ratio {run['ratio']:.2f}; applying {run['seconds_applying']:.1f} s), "
            f"{run['steps']} steps, {total} requests, client CPU {run['cpu']:.1f} s, "
            f"{run['peak_mb']:.0f} MB"
        )
    result["apply"] = runs
    costs = runs[0].pop("ledger", None) if runs else None
    if costs is not None:
        result["ledger"] = ledger_shares(costs, runs, empty["requests"])
        print_ledger(result["ledger"])
    result["peak_mb"] = max(
        [ran.peak_mb, empty["peak_mb"], noop["peak_mb"], filled.peak_mb]
        + [r["peak_mb"] for r in runs]
    )
    return result


def ledger_shares(
    costs: dict[str, Any], runs: list[dict[str, Any]], plan_requests: int
) -> dict[str, Any]:
    """The ledger's measured costs, totalled for a first apply and a no-op plan, and as shares
    of those commands' requests and wall times measured by the bench."""
    parts = (costs["empty_read"], costs["write"], costs["after"])
    requests = sum(part["requests"] for part in parts)
    seconds = sum(part["seconds"] for part in parts)
    first = runs[0]
    noop_requests = costs["read"]["requests"]
    return costs | {
        "measured_on": {"parallelism": first["parallelism"], "latency_ms": first["latency_ms"]},
        "first_apply": {
            "requests": requests,
            "seconds": seconds,
            "shares": [
                {
                    "parallelism": run["parallelism"],
                    "requests": run["requests"] + plan_requests,
                    "wall": run["wall"],
                    "request_share": requests / (run["requests"] + plan_requests),
                    "time_share": seconds / run["wall"],
                }
                for run in runs
            ],
        },
        "noop_plan": {
            "requests": noop_requests,
            "seconds": costs["read"]["seconds"],
            "added_to_snapshot": costs["snapshot"]["added"],
            "plan_requests": first["replan_requests"],
            "plan_wall": first["replan_wall"],
            "request_share": noop_requests / first["replan_requests"],
            "time_share": costs["read"]["seconds"] / first["replan_wall"],
        },
    }


def print_ledger(figures: dict[str, Any]) -> None:
    first, noop, prune = figures["first_apply"], figures["noop_plan"], figures["prune_one"]
    write = figures["write"]["by_method"]
    print(
        f"  ledger: {figures['pages']} notes, {figures['chars']:,} characters, "
        f"{figures['entries']:,} entries"
        + ("" if figures["reproduced"] else " (NOT reproduced by writing the entries again)")
    )
    print(
        f"    first apply: {first['requests']} requests (plan's read "
        f"{figures['empty_read']['requests']}, write {dict(write)}, "
        f"after the steps {figures['after']['requests']}) in {first['seconds']:.3f} s; "
        + ", ".join(
            f"-p {s['parallelism']}: {100 * s['request_share']:.2f} % of {s['requests']:,} "
            f"requests, {100 * s['time_share']:.1f} % of {s['wall']:.1f} s"
            for s in first["shares"]
        )
    )
    print(
        f"    a GET's floor on this emulator (WhoAmI): "
        f"{figures['get_floor']['seconds'] * 1000:.0f} ms"
    )
    print(
        f"    no-op plan: {noop['requests']} of {noop['plan_requests']} requests "
        f"({100 * noop['request_share']:.1f} %), read alone {noop['seconds']:.3f} s = "
        f"{100 * noop['time_share']:.1f} % of the {noop['plan_wall']:.2f} s plan at "
        f"{figures['measured_on']['latency_ms']:g} ms; "
        f"adds {noop['added_to_snapshot'] * 1000:+.0f} ms to the snapshot's "
        f"{figures['snapshot']['with_ledger']:.3f} s"
    )
    print(
        f"    pruning one record: before the steps {prune['before_steps']['requests']} "
        f"request(s), {prune['before_steps']['seconds']:.3f} s; after them "
        f"{prune['after_steps']['by_method']}, {prune['after_steps']['seconds']:.3f} s"
    )


def slower(root: Path, latency_ms: float) -> dict[str, Any]:
    """The 1,000-record apply at -p 8 with a latency nearer a real org's: the client's fixed
    cost per request weighs less against it."""
    folder = root / "slower"
    project = folder / "project"
    synthetic.write_project(project, records=1000, members=MEMBERS)
    run = apply(project, folder / "p8", 8, latency_ms, UNLIMITED)
    # The planning reads of an empty target: one per table, the languages, WhoAmI, the ledger,
    # the users.
    reads = len(KINDS) + 4
    run["bound"] = (run["requests"] + reads) * latency_ms / 1000 / 8
    run["ratio"] = run["wall"] / run["bound"]
    print(
        f"\nlatency {latency_ms:g} ms: apply of 1,000 records at -p 8: {run['wall']:.1f} s "
        f"(bound {run['bound']:.1f} s, ratio {run['ratio']:.2f})"
    )
    return run


def throttled(root: Path, latency_ms: float) -> dict[str, Any]:
    folder = root / "throttled"
    project = folder / "project"
    records = synthetic.write_project(project, records=1000, members=MEMBERS)
    run = apply(project, folder / "p8", 8, latency_ms, THROTTLED)
    run["records"] = records
    run["limit"] = "600 requests / 30 s"
    print(
        f"\nthrottled: apply of {records} records at -p 8 against 600 requests / 30 s: "
        f"{run['wall']:.1f} s, {run['requests']} requests, "
        f"{run['throttle_warnings']} throttling warnings"
    )
    return run


def table(results: list[dict[str, Any]], levels: list[int]) -> str:
    head = (
        "| N records | manifests | validate | plan (empty) | plan (applied) | plan requests / "
        "bound | " + " | ".join(f"apply -p {p} (ratio)" for p in levels) + " | peak memory |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        plan_ = r["plan"]
        requests = max(plan_["empty"]["requests"], plan_["noop"]["requests"])
        cells = [
            f"{r['records']:,}",
            f"{r['manifests']:,}",
            f"{r['validate']['wall']:.2f} s",
            f"{plan_['empty']['wall']:.2f} s",
            f"{plan_['noop']['wall']:.2f} s",
            f"{requests} / {plan_['bound']} ({requests / plan_['bound']:.2f}x)",
            *(f"{a['wall']:.1f} s ({a['ratio']:.2f}x)" for a in r["apply"]),
            f"{r['peak_mb']:.0f} MB",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ledger_table(results: list[dict[str, Any]]) -> str:
    head = (
        "| N records | ledger notes | characters | first apply: ledger requests (share) | "
        "ledger time (share at -p "
        + ", ".join(str(s["parallelism"]) for s in results[0]["ledger"]["first_apply"]["shares"])
        + ") | no-op plan: ledger requests (share) | ledger time (share) |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        figures = r["ledger"]
        first, noop = figures["first_apply"], figures["noop_plan"]
        shares = first["shares"]
        cells = [
            f"{r['records']:,}",
            str(figures["pages"]),
            f"{figures['chars']:,}",
            f"{first['requests']} of {shares[0]['requests']:,} "
            f"({100 * shares[0]['request_share']:.2f} %)",
            f"{first['seconds']:.2f} s ("
            + ", ".join(f"{100 * s['time_share']:.1f} %" for s in shares)
            + ")",
            f"{noop['requests']} of {noop['plan_requests']} ({100 * noop['request_share']:.1f} %)",
            f"{noop['seconds'] * 1000:.0f} ms ({100 * noop['time_share']:.1f} %)",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def code() -> dict[str, Any]:
    """The commit measured, and the files under reconciler/ that differ from it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    changed = git("status", "--porcelain", "--", "reconciler").splitlines()
    return {"commit": git("rev-parse", "HEAD"), "changed": [line[3:] for line in changed]}


def machine() -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
        model = found[1] if found else ""
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100,1000,10000", help="records, comma-separated")
    parser.add_argument("--parallelism", default="1,8,32", help="comma-separated")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument(
        "--no-throttled", action="store_true", help="skip the throttled and 100 ms runs"
    )
    parser.add_argument(
        "--ledger-repeats", type=int, default=5, help="runs of each ledger timing (0: none)"
    )
    parser.add_argument("--json", type=Path, default=ROOT / ".reconciler" / "bench.json")
    arguments = parser.parse_args()
    sizes = [int(n) for n in arguments.sizes.split(",")]
    levels = [int(p) for p in arguments.parallelism.split(",")]
    started = time.perf_counter()
    about = machine()
    about["load_at_start"] = os.getloadavg()
    measured = code()
    print(f"bench on {about['cpus']} CPUs ({about['cpu']}), Python {about['python']}")
    print(
        f"code: {measured['commit'][:12]}"
        + (
            f", changed under reconciler/: {', '.join(measured['changed'])}"
            if measured["changed"]
            else ""
        )
    )
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        results = [
            measure(n, root, levels, arguments.latency_ms, arguments.ledger_repeats) for n in sizes
        ]
        limited = None if arguments.no_throttled else throttled(root, arguments.latency_ms)
        slow = None if arguments.no_throttled else slower(root, 100.0)
    elapsed = time.perf_counter() - started
    print(f"\n{table(results, levels)}")
    if all("ledger" in r for r in results) and results:
        print(f"\n{ledger_table(results)}")
    load = os.getloadavg()
    if code() != measured:
        print("\nthe code under reconciler/ changed while the bench ran (see 'code_at_end')")
    print(
        f"\nbench took {elapsed / 60:.1f} min; load average at the end "
        f"{load[0]:.2f} (1 min), {load[2]:.2f} (15 min) on {about['cpus']} CPUs"
    )
    arguments.json.parent.mkdir(parents=True, exist_ok=True)
    arguments.json.write_text(
        json.dumps(
            {
                "machine": about,
                "code": measured,
                "code_at_end": code(),
                "latency_ms": arguments.latency_ms,
                "sizes": results,
                "throttled": limited,
                "latency_100ms": slow,
                "seconds": elapsed,
                "load_at_end": load,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"figures written to {arguments.json}")


if __name__ == "__main__":
    main()
