"""``reconciler apply [PATHS | --plan FILE]``: plan, show, ask, write, report."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from reconciler.cli.common import PATHS_HELP, Options, note, parse_vars, plan_failed
from reconciler.errors import ReconcilerError, UsageError
from reconciler.models.limits import DEFAULT_PARALLELISM, MAX_PARALLELISM
from reconciler.render.style import use_color

if TYPE_CHECKING:
    from reconciler.apply.applier import Applied, ApplyOptions
    from reconciler.plan.definition import Plan
    from reconciler.plan.evaluator import Result
    from reconciler.plan.stages import Step


def add_parser(commands: argparse._SubParsersAction, options: Options) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser(
        "apply",
        parents=[options.output, options.project, options.target],
        help="make the target match the manifests (or a saved plan)",
        description="Plan the manifests (or load a plan saved with `plan --out`), show it, ask "
        "for 'yes', and apply it. Exit 0 when everything applied, 1 on errors or when a step "
        "failed or was stale, 3 when refused for safety (a conflict, too many deletes, a plan "
        "for another target, changed secrets, no confirmation).",
    )
    parser.add_argument("paths", nargs="*", metavar="PATHS", help=PATHS_HELP)
    parser.add_argument("--plan", metavar="FILE", help="apply this saved plan exactly")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument(
        "--prune",
        action="store_true",
        help="delete records this project made that no manifest describes any more",
    )
    parser.add_argument(
        "--force", action="store_true", help="apply deletes beyond safety.maxDeletePercent"
    )
    parser.add_argument(
        "--parallelism",
        type=int,
        default=DEFAULT_PARALLELISM,
        metavar="N",
        help=f"requests in flight at most (1-{MAX_PARALLELISM}, default {DEFAULT_PARALLELISM})",
    )
    parser.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="text (default) or json: JSON lines, one event per step and a summary (needs --yes)",
    )
    parser.set_defaults(run=run)


class TerminalUi:
    """Shows the plan, asks on a terminal, and reports each finished step: a line per step,
    and on a terminal a progress bar under them with the rate and the time left."""

    def __init__(self, args: argparse.Namespace, out: TextIO, stdin: TextIO) -> None:
        self.args, self.out, self.stdin = args, out, stdin
        self.color = use_color(out, args.no_color)
        # A terminal that can move the cursor back: TERM=dumb cannot (``\r\033[K`` shows).
        terminal = bool(getattr(out, "isatty", lambda: False)())
        self.bar = terminal and os.environ.get("TERM") != "dumb"
        self.results: list[Result] = []
        self.total = 0
        self.started_at = 0.0

    def show(self, plan: Plan) -> None:
        from reconciler.render.plan_text import render_text

        self.out.write(render_text(plan, color=self.color, verbose=self.args.verbose))

    def confirm(self, plan: Plan) -> bool:
        if self.args.yes:
            return True
        if not self.stdin.isatty():
            from reconciler.apply.applier import ApplyRefused

            raise ApplyRefused(
                "stdin is not a terminal, so nobody can confirm; pass --yes to apply without asking"
            )
        self.out.write(
            "\nDo you want to perform these actions? Only 'yes' will be accepted.\n"
            "  Enter a value: "
        )
        self.out.flush()
        return self.stdin.readline().strip() == "yes"

    def started(self, steps: Sequence[Step]) -> None:
        self.total = len(steps)
        self.started_at = time.perf_counter()
        self.out.write(f"\nApplying {self.total} step{'s' if self.total != 1 else ''}...\n")
        self.out.flush()

    def finished(self, result: Result) -> None:
        from reconciler.render.apply_text import progress_bar, step_line

        self.results.append(result)
        if not self.bar:
            self.out.write(step_line(result, self.color) + "\n")
        else:  # the bar is the last line: cleared, the step's line, the bar drawn again
            self.out.write("\r\033[K" + step_line(result, self.color) + "\n")
            if len(self.results) < self.total:
                elapsed = time.perf_counter() - self.started_at
                self.out.write(progress_bar(self.results, self.total, elapsed=elapsed))
        self.out.flush()

    def report(self, applied: Applied) -> None:
        from reconciler.render.apply_text import (
            already_applied,
            render_checklist,
            render_summary,
        )

        if applied.already_applied is not None:
            self.out.write(already_applied(applied, self.color))
            return
        self.out.write(render_summary(applied, self.color))
        self.out.write(render_checklist(applied.checklist, self.color))


class JsonUi:
    """``--format json``: JSON lines on stdout, one object per event (``plan``, ``apply_start``,
    ``step``, ``follow_up``, ``summary``), like ``terraform apply -json``; nothing is asked
    (``--yes`` is required)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.color = False

    def _write(self, line: str) -> None:
        self.out.write(line)
        self.out.flush()

    def show(self, plan: Plan) -> None:
        from reconciler.render.apply_text import event

        self._write(
            event(
                "plan",
                target=plan.target.model_dump(mode="json", exclude_none=True),
                summary=plan.summary.model_dump(mode="json"),
                warnings=[w.model_dump(mode="json") for w in plan.warnings],
                checksum=plan.checksum,
            )
        )

    def confirm(self, plan: Plan) -> bool:
        return True  # run() refuses --format json without --yes

    def started(self, steps: Sequence[Step]) -> None:
        from reconciler.render.apply_text import event

        self._write(event("apply_start", steps=len(steps)))

    def finished(self, result: Result) -> None:
        from reconciler.render.apply_text import step_event

        self._write(step_event(result))

    def failed(self, error: BaseException) -> None:
        """An ``error`` event (after a ``diagnostic`` event per problem of the manifests), with
        the exit code ``main`` gives (an unexpected error's message names only its type)."""
        from reconciler.plan.planner import PlanFailed
        from reconciler.render.apply_text import event
        from reconciler.render.diagnostics import as_json

        problems = error.diagnostics if isinstance(error, PlanFailed) else []
        for diagnostic in problems:
            self._write(event("diagnostic", **as_json(diagnostic)))
        if isinstance(error, ReconcilerError):
            message, code = str(error), error.exit_code
        elif isinstance(error, KeyboardInterrupt):
            message, code = "interrupted", 130
        else:
            message, code = f"unexpected internal error ({type(error).__name__})", 1
        self._write(event("error", message=message, exit_code=code))

    def report(self, applied: Applied) -> None:
        from reconciler.render.apply_text import follow_up_events, summary_event

        self._write(follow_up_events(applied.checklist) + summary_event(applied))


def run(args: argparse.Namespace) -> int:
    # Imported here: every other command (validate above all) would pay for them at start-up.
    from reconciler.apply.applier import ApplyOptions

    if not 1 <= args.parallelism <= MAX_PARALLELISM:
        raise UsageError(f"--parallelism must be 1 to {MAX_PARALLELISM}, got {args.parallelism}")
    if args.plan and args.paths:
        raise UsageError("give PATHS or --plan FILE, not both")
    environ = dict(os.environ)
    from reconciler.cli import WARNINGS

    apply_log = logging.getLogger("reconciler.apply")  # a saved plan's trust warnings
    if WARNINGS not in apply_log.handlers:
        apply_log.addHandler(WARNINGS)
    options = ApplyOptions(
        parallelism=args.parallelism, force=args.force, environ=environ, target=args.target
    )
    ui: TerminalUi | JsonUi
    if args.format == "json":
        if not args.yes:
            raise UsageError("--format json cannot ask for confirmation: pass --yes too")
        ui = JsonUi(sys.stdout)
    else:
        ui = TerminalUi(args, sys.stdout, sys.stdin)
    try:
        applied = _apply(args, options, ui)
    except (ReconcilerError, KeyboardInterrupt, Exception) as exc:
        if isinstance(ui, JsonUi):  # the stream ends with why, for whoever reads only stdout
            ui.failed(exc)
        raise
    ui.report(applied)
    return 0 if applied.complete else 1


def _apply(args: argparse.Namespace, options: ApplyOptions, ui: TerminalUi | JsonUi) -> Applied:
    from reconciler import aio
    from reconciler.apply.applier import apply_manifests, apply_saved
    from reconciler.plan.planner import PlanFailed, PlanOptions

    applied: Applied
    if args.plan:
        if args.prune or args.env or args.var or args.var_file:
            raise UsageError("--prune, --env and --var belong to planning; a saved plan is fixed")
        applied = aio.run(apply_saved(args.plan, options, ui))
    else:
        plan_options = PlanOptions(
            paths=args.paths or ["."],
            env=args.env,
            variables=parse_vars(args.var),
            var_files=args.var_file,
            target=args.target,
            prune=args.prune,
            environ=options.environ,
            notice=lambda text: note(text, args.no_color),
        )
        try:
            applied = aio.run(apply_manifests(plan_options, options, ui))
        except PlanFailed as failed:
            plan_failed(failed, args)
            raise
    return applied
