"""``make bench``: plan a synthetic 1,000-manifest project against the local target.

The project comes from ``tests/synthetic.py``; the target is filled by the real applier.

Prints wall times and request counts for an empty target and for one that already matches
(every record read and compared). Figures, not assertions: tests check behaviour.

    python tests/bench/plan_bench.py [--documents N]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from reconciler.apply.applier import ApplyOptions, apply_manifests
from reconciler.plan.planner import PlanOptions, make_plan_async

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the shared helpers
import synthetic


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=1000)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        synthetic.write_project(root / "project", documents=arguments.documents)
        environ = synthetic.environ()
        options = PlanOptions(
            paths=[str(root / "project")], target=f"local:{root / 'bench.db'}", environ=environ
        )
        for label in ("empty target", "matching target"):
            if label == "matching target":
                applied = await apply_manifests(
                    options, ApplyOptions(environ=environ), synthetic.QuietUi()
                )
                assert applied.complete, "the apply that fills the target did not complete"
                print(
                    f"  (filled the target with `apply`: {len(applied.results)} steps, "
                    f"{applied.requests} requests, {applied.seconds:.2f} s)"
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
