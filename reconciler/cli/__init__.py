"""The ``reconciler`` command. Each command module makes one call into the library."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TextIO, cast

from reconciler import __version__
from reconciler.cli import apply, completion, emulator, export, plan, schema, show, validate
from reconciler.cli.common import ArgumentParser, shared_options
from reconciler.errors import ReconcilerError
from reconciler.gctuning import fewer_collections
from reconciler.render import neutral
from reconciler.render.style import clean, paint, use_color


class WarningLines(logging.Handler):
    """Warnings of the Dataverse client (``the service is throttling requests: waiting 45 s``)
    as ``warning:`` lines on stderr: never on stdout, where ``plan --format json`` writes."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.color = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = clean(record.getMessage())  # no traceback, whatever the record holds
            sys.stderr.write(f"{paint('warning:', 'yellow', self.color)} {text}\n")
            sys.stderr.flush()
        except Exception:  # pragma: no cover - a closed stderr
            self.handleError(record)


WARNINGS = WarningLines()


def show_warnings(no_color: bool) -> None:
    """Route the client's warnings to stderr (once per process; ``main`` may run many times)."""
    WARNINGS.color = use_color(sys.stderr, no_color)
    client_log = logging.getLogger("reconciler.dataverse")
    if WARNINGS not in client_log.handlers:
        client_log.addHandler(WARNINGS)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="reconciler",
        description="Configuration as code for Dynamics 365 Omnichannel for Customer Service.",
    )
    parser.add_argument("--version", action="version", version=f"reconciler {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parent = shared_options()  # each command takes the groups it uses
    validate.add_parser(commands, parent)
    plan.add_parser(commands, parent)
    apply.add_parser(commands, parent)
    export.add_parser(commands, parent)
    show.add_parser(commands, parent)
    schema.add_parser(commands, parent)
    emulator.add_parser(commands, parent)
    completion.add_parser(commands, parent)
    return parser


@contextmanager
def neutral_streams() -> Iterator[None]:
    """stdout and stderr through ``neutral.Guard`` while a command runs: whatever writes to
    them (a renderer, a log handler, a traceback), no ``##vso[`` or ``##[`` reaches a CI log
    (see ``reconciler.render.neutral``). The renderers escape those sequences themselves; this
    is the last resort. The streams are flushed and put back on the way out (``main`` runs
    many times in one process in the tests, under pytest's capture)."""
    saved = sys.stdout, sys.stderr
    guards = [
        None if stream is None or isinstance(stream, neutral.Guard) else neutral.Guard(stream)
        for stream in saved
    ]
    if guards[0] is not None:
        sys.stdout = cast(TextIO, guards[0])
    if guards[1] is not None:
        sys.stderr = cast(TextIO, guards[1])
    try:
        yield
    finally:
        for guard, name in zip(guards, ("stdout", "stderr"), strict=True):
            if guard is None:
                continue
            with suppress(OSError, ValueError):  # a closed or broken stream: put it back
                guard.flush()
            if getattr(sys, name) is guard:
                setattr(sys, name, guard.stream)


def main(argv: Sequence[str] | None = None) -> int:
    with neutral_streams():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in arguments
    try:
        args = build_parser().parse_args(arguments)
        show_warnings(getattr(args, "no_color", False))
        with fewer_collections():
            code: int = args.run(args)
        return code
    except ReconcilerError as exc:
        if debug:
            traceback.print_exc()
        # One line, whatever the message quotes (a saved plan's keys, an org's text): a line
        # break there could start a line a CI runner reads as a command (``::error``).
        sys.stderr.write(f"error: {clean(str(exc))}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
    except Exception as exc:
        if debug:
            traceback.print_exc()
        else:
            sys.stderr.write(
                f"error: unexpected internal error ({type(exc).__name__}); "
                "rerun with --debug for the traceback\n"
            )
        return 1
