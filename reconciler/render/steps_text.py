"""The explainer: the API calls a plan's steps will make, in the order apply runs them.

``plan -v`` prints it from the same ``stages.build_steps`` list apply evaluates, so the preview
cannot drift from what apply does. Steps on one level have all they need once the levels above
are done; apply runs them concurrently (up to ``--parallelism``).
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.plan.stages import Step, order
from reconciler.render.style import clean, plural


def levels(steps: Sequence[Step]) -> list[list[Step]]:
    """Steps grouped by level (``stages.order``): early deletes first."""
    depth = order(steps)
    grouped: dict[int, list[Step]] = {}
    for step in steps:
        grouped.setdefault(depth[step.key], []).append(step)
    return [grouped[level] for level in sorted(grouped)]


def render_steps(steps: Sequence[Step]) -> str:
    if not steps:
        return "Apply would make no API calls.\n"
    grouped = levels(steps)
    lines = [
        f"Apply would make these API calls ({plural(len(steps), 'step')} in "
        f"{plural(len(grouped), 'level')}; each level starts once the steps it needs are done):"
    ]
    for number, level in enumerate(grouped, 1):
        lines.append(f"  level {number}:")
        for step in level:
            for method, path, headers in step.requests():
                condition = "  ".join(f"{name}: {value}" for name, value in headers.items())
                lines.append(
                    f"    {method:<6} {clean(path)}  {clean(condition)}".rstrip()
                    + f"  # {step.op} {clean(step.address)}"
                )
    return "\n".join(lines) + "\n"
