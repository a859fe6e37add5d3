"""``make bench``: validate, plan and apply synthetic projects of 100, 1,000 and 10,000 records.

For each size N (``tests/synthetic.py``: queues, Facebook accounts with two pages, workstreams,
rule sets of 5 to 50 rules), every figure comes from the real CLI in its own process, timed from
start to exit (start-up included), with its peak resident memory:

- ``validate PROJECT``;
- ``plan`` against an empty local target, and against a local target that already holds the
  project (filled by ``apply``), with the requests each made against the lower bound: one
  request per page of each table read (5,000 rows a page), plus ``WhoAmI``;
- ``apply --parallelism P`` (P = 1, 8, 32) to a served emulator answering every request after
  ``--latency-ms 20``, a fresh database each time, against the bound ``requests x 20 ms / P``;
  then ``plan --detailed-exitcode`` must find nothing left to change. These runs lift the
  emulator's request-count limit (6,000 per 5 minutes): they measure overlap, not throttling;
- once, ``apply`` of the 1,000-record project to an emulator whose service-protection limit is
  Dataverse's rate scaled down ten times (600 requests per 30 s): how long throttling costs;
  and once at ``--parallelism 8`` with ``--latency-ms 100``, nearer a real org's latency.

Prints the tables and writes every figure to ``--json`` (default ``.reconciler/bench.json``).
Figures, not assertions: tests check behaviour. Goals are in ``docs/performance.md``.

    python tests/bench/suite.py [--sizes 100,1000,10000] [--parallelism 1,8,32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.dataverse.client import MAX_PAGE_SIZE
from reconciler.mapping.kinds import KINDS
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
        "languages": len(snapshot.languages)
    }


def pages(rows: dict[str, int]) -> int:
    """Requests a plan cannot do without: a page per 5,000 rows of each table, and WhoAmI."""
    return sum(max(1, math.ceil(n / MAX_PAGE_SIZE)) for n in rows.values()) + 1


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
    project: Path, work: Path, parallelism: int, latency_ms: float, limits: tuple[str, ...]
) -> dict[str, Any]:
    environ = synthetic.environ()
    work.mkdir()
    with Served(work / "org.db", "--latency-ms", f"{latency_ms:g}", *limits) as emulator:
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
    }


def measure(n: int, root: Path, levels: list[int], latency_ms: float) -> dict[str, Any]:
    folder = root / f"n{n}"
    project = folder / "project"
    records = synthetic.write_project(project, records=n)
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

    empty = plan(project, f"local:{folder / 'empty.db'}", environ, folder)
    full_target = f"local:{folder / 'full.db'}"
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

    runs = []
    for parallelism in levels:
        run = apply(project, folder / f"p{parallelism}", parallelism, latency_ms, UNLIMITED)
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
    result["peak_mb"] = max(
        [ran.peak_mb, empty["peak_mb"], noop["peak_mb"], filled.peak_mb]
        + [r["peak_mb"] for r in runs]
    )
    return result


def slower(root: Path, latency_ms: float) -> dict[str, Any]:
    """The 1,000-record apply at -p 8 with a latency nearer a real org's: the client's fixed
    cost per request weighs less against it."""
    folder = root / "slower"
    project = folder / "project"
    synthetic.write_project(project, records=1000)
    run = apply(project, folder / "p8", 8, latency_ms, UNLIMITED)
    # The planning reads of an empty target: one per table, the languages and WhoAmI.
    reads = len(KINDS) + 2
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
    records = synthetic.write_project(project, records=1000)
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
    parser.add_argument("--json", type=Path, default=ROOT / ".reconciler" / "bench.json")
    arguments = parser.parse_args()
    sizes = [int(n) for n in arguments.sizes.split(",")]
    levels = [int(p) for p in arguments.parallelism.split(",")]
    started = time.perf_counter()
    about = machine()
    print(f"bench on {about['cpus']} CPUs ({about['cpu']}), Python {about['python']}")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        results = [measure(n, root, levels, arguments.latency_ms) for n in sizes]
        limited = None if arguments.no_throttled else throttled(root, arguments.latency_ms)
        slow = None if arguments.no_throttled else slower(root, 100.0)
    elapsed = time.perf_counter() - started
    print(f"\n{table(results, levels)}\n\nbench took {elapsed / 60:.1f} min")
    arguments.json.parent.mkdir(parents=True, exist_ok=True)
    arguments.json.write_text(
        json.dumps(
            {
                "machine": about,
                "latency_ms": arguments.latency_ms,
                "sizes": results,
                "throttled": limited,
                "latency_100ms": slow,
                "seconds": elapsed,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"figures written to {arguments.json}")


if __name__ == "__main__":
    main()
