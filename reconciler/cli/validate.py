"""``reconciler validate [PATHS]``: offline checks, every problem at its file:line:col."""

from __future__ import annotations

import argparse
import sys

from reconciler.cli.common import PATHS_HELP, Options, parse_vars
from reconciler.render import diagnostics as render
from reconciler.render.style import clean, use_color
from reconciler.validate.pipeline import Options as ValidateOptions
from reconciler.validate.pipeline import validate

EXIT_OK, EXIT_ERROR, EXIT_REFUSED = 0, 1, 3


def add_parser(commands: argparse._SubParsersAction, options: Options) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser(
        "validate",
        parents=[options.output, options.project],
        help="check manifests offline",
        description="Schema, reference and policy checks, offline. Exit 0 when there are no "
        "errors (warnings allowed), 1 on errors, 3 when only policy refuses.",
    )
    parser.add_argument("paths", nargs="*", default=["."], metavar="PATHS", help=PATHS_HELP)
    parser.add_argument(
        "--format",
        choices=["text", "json", "github"],
        default="text",
        help="github: workflow annotations (::error file=...,line=...,col=...::message)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    report = validate(
        ValidateOptions(
            paths=args.paths,
            env=args.env,
            variables=parse_vars(args.var),
            var_files=args.var_file,
        )
    )
    if args.verbose:  # on stderr: stdout holds the report a pipeline may parse
        project = (
            report.project_file or "none (the defaults: no reconciler.yaml in the paths or above)"
        )
        sys.stderr.write(f"project file: {clean(project)}\n")
        sys.stderr.writelines(f"read {clean(path)}\n" for path in report.files)
    counts = (report.diagnostics, len(report.files), report.document_count)
    if args.format == "json":
        sys.stdout.write(render.to_json(*counts))
    elif args.format == "github":
        sys.stdout.write(render.to_github(*counts))
    else:
        sys.stdout.write(render.to_text(*counts, color=use_color(sys.stdout, args.no_color)))
    if not report.errors:
        return EXIT_OK
    return EXIT_REFUSED if report.refused_by_policy else EXIT_ERROR
