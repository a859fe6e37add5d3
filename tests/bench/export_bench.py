"""``make bench``: export an org of about 2,000 records, then plan the export against it.

The org is the synthetic project of ``tests/synthetic.py`` applied by the real applier to a
fresh local target. It is exported under that project's namespace (``--namespace``): its
ledger lists every record, so the export holds them all (under an org-derived namespace each
would be another project's record, and skipped). Prints the export's wall time and requests,
the size of what it wrote, and the plan of the exported files (which must be all ``noop``).
Figures, not assertions.

    python tests/bench/export_bench.py [--records N]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

from reconciler.apply.applier import ApplyOptions, apply_manifests
from reconciler.export.exporter import variable_values
from reconciler.export.run import ExportOptions, export_async
from reconciler.plan.planner import PlanOptions, make_plan_async

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the shared helpers
import synthetic


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=2000)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        records = synthetic.write_project(root / "project", records=arguments.records)
        target = f"local:{root / 'bench.db'}"
        environ = synthetic.environ()
        options = PlanOptions(paths=[str(root / "project")], target=target, environ=environ)
        applied = await apply_manifests(options, ApplyOptions(environ=environ), synthetic.QuietUi())
        assert applied.complete, "the apply that fills the target did not complete"
        print(
            f"  (filled the target with `apply`: {records} records, {len(applied.results)} steps)"
        )
        timings = []
        for _run in (1, 2):
            started = time.perf_counter()
            done = await export_async(
                ExportOptions(
                    out=root / "export",
                    target=target,
                    namespace=uuid.UUID(synthetic.NAMESPACE),
                )
            )
            timings.append(time.perf_counter() - started)
        written = sum(len(text.encode()) for text in done.files.values())
        export = done.export
        print(
            f"export: {export.records} records in {len(export.documents)} manifests, "
            f"{len(done.files)} files ({written / 1024:.0f} KiB); {timings[0]:.2f} s wall, "
            f"{done.requests} requests, {export.rounds} proof round(s), "
            f"{len(export.skipped)} skipped; again: {timings[1]:.2f} s, "
            f"{len(done.written.unchanged)} files unchanged"
        )
        started = time.perf_counter()
        plan = await make_plan_async(
            PlanOptions(
                paths=[str(root / "export")],
                target=target,
                environ={**environ, **variable_values(export)},
            )
        )
        elapsed = time.perf_counter() - started
        summary = plan.summary
        print(
            f"plan of the export: {len(plan.changes)} records, {elapsed:.2f} s wall, "
            f"{plan.requests} requests (noop {summary.noop}, create {summary.create}, "
            f"update {summary.update}, replace {summary.replace}, delete {summary.delete})"
        )


if __name__ == "__main__":
    asyncio.run(main())
