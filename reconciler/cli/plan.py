"""``reconciler plan [PATHS]``: read the target and show what apply would change."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from reconciler.cli.common import PATHS_HELP, Options, note, parse_vars, plan_failed
from reconciler.errors import UsageError
from reconciler.plan.signing import plan_key
from reconciler.render.style import use_color

if TYPE_CHECKING:
    from reconciler.plan.definition import Plan
    from reconciler.plan.routing import Routing

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_REFUSED = 0, 1, 2, 3


def add_parser(commands: argparse._SubParsersAction, options: Options) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser(
        "plan",
        parents=[options.output, options.project, options.target],
        help="show what apply would change (reads the target, never writes)",
        description="Validate the manifests, read the target and print the changes apply would "
        "make. Exit 0 (no changes, or changes without --detailed-exitcode), 1 on errors, 2 with "
        "--detailed-exitcode when there are changes, 3 when a conflict or policy refuses.",
    )
    parser.add_argument("paths", nargs="*", default=["."], metavar="PATHS", help=PATHS_HELP)
    parser.add_argument(
        "--format",
        choices=["text", "markdown", "json"],
        default="text",
        help="text (default), markdown (for a pull request comment) or json",
    )
    parser.add_argument("--out", metavar="FILE", help="also write the JSON plan to FILE")
    parser.add_argument(
        "--detailed-exitcode", action="store_true", help="exit 2 when there are changes"
    )
    parser.add_argument(
        "--prune",
        action="store_true",
        help="delete records this project made that no manifest describes any more",
    )
    parser.add_argument(
        "--against",
        metavar="GIT_REF",
        help="compare with the manifests at a git revision instead of a target: offline, "
        "no credentials (secrets compare by where they are read from)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: every other command (validate above all) would pay for them at start-up.
    from reconciler.plan.planner import PlanFailed, PlanOptions, make_plan_with_routing
    from reconciler.plan.stages import build_steps
    from reconciler.render.steps_text import render_steps

    if args.against is not None:
        return _against(args)
    plan_key(os.environ)  # a key too short to sign with is refused before the target is read
    options = PlanOptions(
        paths=args.paths,
        env=args.env,
        variables=parse_vars(args.var),
        var_files=args.var_file,
        target=args.target,
        prune=args.prune,
        environ=dict(os.environ),
        notice=lambda text: note(text, args.no_color),
    )
    try:
        plan, routing = make_plan_with_routing(options)
    except PlanFailed as failed:
        plan_failed(failed, args)
        raise
    return _show(plan, routing, args, lambda: render_steps(build_steps(plan)))


def _against(args: argparse.Namespace) -> int:
    from reconciler.plan.against import AgainstOptions, plan_against
    from reconciler.plan.planner import PlanFailed

    # RECONCILER_TARGET is ignored rather than refused: CI sets it for its other steps.
    if args.target is not None:
        raise UsageError("--against compares with a git revision; it reads no --target")
    if args.out:
        raise UsageError(
            "--against makes a comparison, not a plan apply can run: use --format json to keep it"
        )
    options = AgainstOptions(
        ref=args.against,
        paths=args.paths,
        env=args.env,
        variables=parse_vars(args.var),
        var_files=args.var_file,
        prune=args.prune,
    )
    try:
        plan, routing = plan_against(options)
    except PlanFailed as failed:
        plan_failed(failed, args)
        raise
    return _show(plan, routing, args, None)


def _show(
    plan: Plan,
    routing: Mapping[str, Routing],
    args: argparse.Namespace,
    steps: Callable[[], str] | None,
) -> int:
    """Write the plan (``--out``, then stdout in ``--format``) and choose the exit code."""
    key = plan_key(os.environ)
    if key is not None and plan.target.revision is None:
        plan = plan.signed(key)  # what --out and --format json write: a plan apply can verify
    if args.out:
        try:
            with open(args.out, "w", encoding="utf-8") as handle:
                handle.write(plan.to_json())
        except OSError as exc:
            raise UsageError(f"cannot write the plan to {args.out}: {exc.strerror}") from None
    write_plan(plan, routing, args)
    if args.format == "text" and args.verbose and plan.has_changes and steps is not None:
        sys.stdout.write("\n" + steps())
    if plan.has_conflicts:
        return EXIT_REFUSED
    return EXIT_CHANGES if args.detailed_exitcode and plan.has_changes else EXIT_OK


def write_plan(plan: Plan, routing: Mapping[str, Routing], args: argparse.Namespace) -> None:
    """``plan`` on stdout in ``args.format`` (``plan`` and ``show``)."""
    from reconciler.render.plan_markdown import render_markdown
    from reconciler.render.plan_text import render_text

    if args.format == "json":
        sys.stdout.write(plan.to_json())
    elif args.format == "markdown":
        sys.stdout.write(render_markdown(plan, routing))
    else:
        color = use_color(sys.stdout, args.no_color)
        sys.stdout.write(render_text(plan, color=color, verbose=args.verbose))
