"""Options every command shares, and the argument parser that reports like the rest of the CLI."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from reconciler.errors import UsageError
from reconciler.manifest.variables import VAR_NAME_RE
from reconciler.render import diagnostics as render_diagnostics
from reconciler.render.style import clean, paint, use_color

if TYPE_CHECKING:
    from reconciler.plan.planner import PlanFailed


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage problem is an ``error:`` line and exit 1 (2 means "changes")."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


PATHS_HELP = (
    "manifest files or folders (default: .); reconciler.yaml is the one inside them, else the "
    "nearest above, up to the repository root"
)


@dataclass(frozen=True)
class Options:
    """The option groups commands share; each command takes only the groups it uses, so
    ``--help`` lists nothing that would do nothing (``schema --env`` is a usage error)."""

    output: ArgumentParser
    """``--no-color``, ``-v`` and ``--debug``: commands that report on what they did."""
    verbose: ArgumentParser
    """``-v`` alone (``emulator serve``: a line per request)."""
    project: ArgumentParser
    """``--env``, ``--var`` and ``--var-file``: commands that read the manifests."""
    target: ArgumentParser
    """``--target``: commands that talk to a Dataverse."""
    debug: ArgumentParser
    """``--debug`` alone: commands with no colour or detail to choose."""


def _parent(title: str) -> tuple[ArgumentParser, argparse._ArgumentGroup]:
    parent = ArgumentParser(add_help=False)
    return parent, parent.add_argument_group(title)


def shared_options() -> Options:
    output, group = _parent("output options")
    group.add_argument(
        "--no-color",
        action="store_true",
        help="plain output (also NO_COLOR=1 or TERM=dumb; FORCE_COLOR=1 colours a pipe)",
    )
    _verbose(group)
    _debug(group)
    verbose, group = _parent("output options")
    _verbose(group)
    project, group = _parent("project options")
    group.add_argument("--env", metavar="NAME", help="an environment of reconciler.yaml")
    group.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="K=V",
        help="set the variable K for ${K} in the manifests (repeatable; wins over --var-file)",
    )
    group.add_argument(
        "--var-file",
        action="append",
        default=[],
        metavar="FILE",
        help="a YAML file of NAME: value variables (repeatable)",
    )
    target, group = _parent("target options")
    group.add_argument(
        "--target",
        metavar="TARGET",
        help="local, local:PATH, http://127.0.0.1:PORT or https://ORG.crmN.dynamics.com "
        "(also RECONCILER_TARGET; default: the environment's, else local)",
    )
    debug, group = _parent("output options")
    _debug(group)
    return Options(output, verbose, project, target, debug)


def _verbose(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more detail: the files read, warnings with errors, the steps of a plan",
    )


def _debug(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--debug", action="store_true", help="show the traceback of an unexpected error"
    )


def note(text: str, no_color: bool) -> None:
    """A ``note:`` line on stderr: what a command assumed, never on stdout (where plans go)."""
    color = use_color(sys.stderr, no_color)
    sys.stderr.write(f"{paint('note:', 'cyan', color)} {clean(text)}\n")


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
