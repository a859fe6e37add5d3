"""Run ``reconciler ARGS`` and write its peak resident memory (VmHWM, in KiB) to a file.

    python tests/bench/peak.py PEAK_FILE ARGS...

The bench measures each command in its own process. ``wait4``'s ``ru_maxrss`` would do, but
on Linux it also counts the memory the process had before ``exec``, a copy of the (larger)
bench process that started it; the high-water mark of the process's own memory does not.
"""

from __future__ import annotations

import atexit
import sys
from pathlib import Path


def _record(path: Path) -> None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            path.write_text(line.split()[1])


if __name__ == "__main__":
    peak = Path(sys.argv[1])
    sys.argv = ["reconciler", *sys.argv[2:]]
    atexit.register(_record, peak)
    from reconciler.cli import main

    sys.exit(main())
