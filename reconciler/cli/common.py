"""Options every command shares, and the argument parser that reports like the rest of the CLI."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, NoReturn

from reconciler.errors import UsageError
from reconciler.manifest.variables import VAR_NAME_RE
from reconciler.render import diagnostics as render_diagnostics
from reconciler.render.style import use_color

if TYPE_CHECKING:
    from reconciler.plan.planner import PlanFailed


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage problem is an ``error:`` line and exit 1 (2 means "changes")."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def common_options() -> ArgumentParser:
    parent = ArgumentParser(add_help=False)
    group = parent.add_argument_group("common options")
    group.add_argument("--target", help="local, local:PATH, http://HOST:PORT or https://ORG...")
    group.add_argument("--env", help="an environment of reconciler.yaml")
    group.add_argument(
        "--var", action="append", default=[], metavar="K=V", help="set a variable (repeatable)"
    )
    group.add_argument(
        "--var-file", action="append", default=[], metavar="FILE", help="YAML file of variables"
    )
    group.add_argument("--no-color", action="store_true", help="plain output (also NO_COLOR)")
    group.add_argument("-v", "--verbose", action="count", default=0, help="more detail")
    group.add_argument("--debug", action="store_true", help="show tracebacks")
    return parent


def parse_vars(pairs: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not VAR_NAME_RE.match(name):
            raise UsageError(f"--var expects NAME=VALUE, got {name!r}")
        values[name] = value
    return values


def plan_failed(failed: PlanFailed, args: argparse.Namespace) -> None:
    """The diagnostics that stopped a plan, one ``file:line:col`` line each, on stderr."""
    color = use_color(sys.stderr, args.no_color)
    for diagnostic in failed.diagnostics:
        if diagnostic.is_error or args.verbose:
            sys.stderr.write(render_diagnostics.line(diagnostic, color) + "\n")
