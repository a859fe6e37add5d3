"""``make bench``: apply a synthetic ~1,000-record project to a served emulator with latency.

For each parallelism (default 1 and 16): a fresh database, ``reconciler emulator serve
--latency-ms 20`` in a subprocess, then ``reconciler apply PROJECT --yes --target URL
--parallelism N`` in another, timed from start to exit. Then ``plan --detailed-exitcode``
must show no changes. Prints both wall times and their ratio, steps, records and requests.
Figures, not assertions about speed: tests check behaviour.

    python tests/bench/apply_bench.py [--records N] [--latency-ms MS] [--parallelism 1,16]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the shared helpers
import synthetic
from served import Served

SUMMARY = re.compile(
    r"^Apply complete: .*\((\d+) steps?, (\d+) requests? in ([\d.]+) s\)\.$", re.MULTILINE
)


@dataclass(frozen=True)
class Run:
    parallelism: int
    wall: float
    steps: int
    requests: int
    inside: float
    """Seconds apply itself reported (after planning, without process start-up)."""
    plan_requests: int
    records: int


def reconciler(*args: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args, "--no-color"],
        capture_output=True,
        text=True,
        env=environ,
        check=False,
    )


def measure(project: Path, work: Path, parallelism: int, latency_ms: float) -> Run:
    environ = synthetic.environ()
    environ.pop("RECONCILER_TARGET", None)
    work.mkdir()
    with Served(work / "bench.db", "--latency-ms", str(latency_ms)) as emulator:
        target = ["--target", emulator.url]
        started = time.perf_counter()
        applied = reconciler(
            "apply",
            str(project),
            "--yes",
            "--parallelism",
            str(parallelism),
            *target,
            environ=environ,
        )
        wall = time.perf_counter() - started
        found = SUMMARY.search(applied.stdout)
        if applied.returncode != 0 or found is None:
            sys.exit(
                f"apply --parallelism {parallelism} failed (exit {applied.returncode}):\n"
                f"{applied.stdout[-3000:]}\n{applied.stderr[-3000:]}"
            )
        again = reconciler(
            "plan",
            str(project),
            "--format",
            "json",
            "--detailed-exitcode",
            *target,
            environ=environ,
        )
        if again.returncode != 0:
            sys.exit(
                f"the plan after apply is not empty (exit {again.returncode}):\n{again.stderr}"
            )
        plan = json.loads(again.stdout)
        changes = {k: v for k, v in plan["summary"].items() if k != "noop" and v}
        if changes:
            sys.exit(f"the plan after apply still has changes: {changes}")
        return Run(
            parallelism,
            wall,
            int(found[1]),
            int(found[2]),
            float(found[3]),
            plan["requests"],
            plan["summary"]["noop"],
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--parallelism", default="1,16", help="comma-separated, e.g. 1,16")
    arguments = parser.parse_args()
    levels = [int(p) for p in arguments.parallelism.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        records = synthetic.write_project(root / "project", records=arguments.records)
        documents = synthetic.documents_for(arguments.records)
        print(
            f"apply: {documents} manifests → {records} records, served emulator with "
            f"--latency-ms {arguments.latency_ms:g} (fresh database per run), "
            f"{os.cpu_count()} CPUs"
        )
        runs = []
        for parallelism in levels:
            run = measure(
                root / "project", root / f"p{parallelism}", parallelism, arguments.latency_ms
            )
            runs.append(run)
            print(
                f"apply --parallelism {run.parallelism:>2}: {run.wall:6.2f} s wall "
                f"({run.inside:.1f} s applying after the plan), {run.steps} steps, "
                f"{run.requests} requests after planning; "
                f"re-plan: no changes, {run.records} records unchanged ({run.plan_requests} "
                "requests)"
            )
        if len(runs) >= 2:
            first, last = runs[0], runs[-1]
            print(
                f"wall time ratio, parallelism {first.parallelism} / {last.parallelism}: "
                f"{first.wall / last.wall:.1f}x"
            )


if __name__ == "__main__":
    main()
