"""``reconciler show PLANFILE``: a saved plan rendered again, offline (``terraform show``)."""

from __future__ import annotations

import argparse

from reconciler.cli.common import Options
from reconciler.cli.plan import write_plan
from reconciler.errors import ReconcilerError


def add_parser(commands: argparse._SubParsersAction, options: Options) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser(
        "show",
        parents=[options.output],
        help="render a plan saved with `plan --out` (offline)",
        description="Read a plan `reconciler plan --out FILE` wrote and print it as text, "
        "markdown or JSON, without reading any target. A plan changed after it was written "
        "(its checksum no longer matches) is refused. Exit 0, or 1 when the file is not a plan.",
    )
    parser.add_argument("planfile", metavar="PLANFILE", help="the saved plan (JSON)")
    parser.add_argument(
        "--format",
        choices=["text", "markdown", "json"],
        default="text",
        help="text (default), markdown (for a pull request comment) or json (the plan itself)",
    )
    parser.set_defaults(run=run)


class NotAPlan(ReconcilerError):
    """The file cannot be shown: not a plan, or changed since it was written."""


def run(args: argparse.Namespace) -> int:
    from reconciler.apply.applier import load_plan

    try:
        plan = load_plan(args.planfile)
    except ReconcilerError as exc:  # a checksum mismatch refuses apply (3); here it is an error
        raise NotAPlan(str(exc)) from None
    # The charts of routing need the manifests, which a saved plan does not carry.
    write_plan(plan, {}, args)
    return 0
