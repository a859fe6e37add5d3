"""``reconciler schema [--out DIR]``: write the JSON Schemas generated from the models."""

from __future__ import annotations

import argparse
import sys

from reconciler.cli.common import Options


def add_parser(commands: argparse._SubParsersAction, options: Options) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser(
        "schema", parents=[options.debug], help="write the manifests' JSON Schemas"
    )
    parser.add_argument(
        "--out",
        default="schemas",
        metavar="DIR",
        help="the folder to write them to (default: schemas)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from reconciler import schemagen  # the models' schemas: not paid by other commands

    for path in schemagen.write(args.out):
        sys.stdout.write(f"wrote {path}\n")
    return 0
