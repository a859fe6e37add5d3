"""``reconciler export --out DIR``: write manifests for what the target holds."""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.cli.common import Options
from reconciler.errors import UsageError
from reconciler.export.files import KINDS, README
from reconciler.kinds import MANIFEST_KINDS
from reconciler.render.style import clean, paint, plural, use_color

if TYPE_CHECKING:
    from reconciler.export.run import Exported

NOUNS = {kind.name: kind.noun for kind in MANIFEST_KINDS}


def add_parser(commands: argparse._SubParsersAction, options: Options) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser(
        "export",
        parents=[options.output, options.target],
        help="write manifests for what the target holds (adopt an existing org)",
        description="Read every supported record of the target and write manifests for them: "
        "one file per kind, a workstream's rule sets in routing/<workstream>.yaml, secrets as "
        "fromEnv references listed in README.md (never their values), and reconciler.yaml. "
        "Records the manifests cannot express are skipped and listed. `reconciler plan` on the "
        "result shows no change. --env names the environment written in reconciler.yaml.",
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="folder to write (empty, or an earlier export)"
    )
    parser.add_argument(
        "--env",
        metavar="NAME",
        help="the environment name written in DIR/reconciler.yaml (default: default)",
    )
    parser.add_argument(
        "--kind",
        action="extend",
        nargs="+",
        metavar="K",
        choices=KINDS,
        help=f"export only these kinds ({', '.join(KINDS)})",
    )
    parser.add_argument(
        "--namespace",
        metavar="UUID",
        help="the project's namespace (default: the one in DIR/reconciler.yaml, else one "
        "derived from the organization)",
    )
    parser.set_defaults(run=run)


def _namespace(text: str | None) -> uuid.UUID | None:
    if text is None:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        raise UsageError(f"--namespace expects a UUID, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    from reconciler.export.run import ExportOptions, export  # not paid by other commands

    options = ExportOptions(
        out=Path(args.out),
        kinds=args.kind or KINDS,
        target=args.target,
        environment=args.env,
        namespace=_namespace(args.namespace),
        environ=dict(os.environ),
    )
    done = export(options)
    report(done, args)
    return 0


def _counts(done: Exported) -> str:
    kinds = Counter(document["kind"] for document in done.export.documents)
    parts = []
    for kind, noun in NOUNS.items():
        if kinds[kind]:
            parts.append(plural(kinds[kind], noun))
    return ", ".join(parts) or "nothing"


def report(done: Exported, args: argparse.Namespace) -> None:
    color = use_color(sys.stderr, args.no_color)
    for item in done.export.skipped:
        line = f"skipped {item.kind} {clean(repr(item.name))} ({item.id}): {clean(item.reason)}"
        sys.stderr.write(f"{paint('warning:', 'yellow', color)} {line}\n")
    out = Path(args.out)
    export = done.export
    sys.stdout.write(
        f"Exported {_counts(done)} ({plural(export.records, 'record')}) from "
        f"{done.target.url} in {plural(done.requests, 'request')}.\n"
    )
    for path in done.written.written:
        sys.stdout.write(f"  wrote   {out / path}\n")
    for path in done.written.removed:
        sys.stdout.write(f"  removed {out / path}\n")
    if done.written.unchanged and args.verbose:
        sys.stdout.writelines(f"  same    {out / path}\n" for path in done.written.unchanged)
    elif done.written.unchanged:
        sys.stdout.write(f"  {plural(len(done.written.unchanged), 'file')} unchanged\n")
    if export.skipped:
        sys.stdout.write(
            f"{plural(len(export.skipped), 'record')} not exported: listed in {out / README}.\n"
        )
    if export.holders:
        sys.stdout.write(
            f"Set the {plural(len(export.holders), 'secret variable')} listed in "
            f"{out / README}, then run `reconciler plan` in {out}.\n"
        )
