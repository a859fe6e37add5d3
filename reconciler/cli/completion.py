"""``reconciler completion bash|zsh|fish``: a shell completion script, written from the
argument parser itself by shtab (https://github.com/tqdm/shtab), so it lists exactly the
commands and options ``--help`` does."""

from __future__ import annotations

import argparse
import sys

from reconciler.cli.common import Options

SHELLS = ("bash", "zsh", "fish")
WHERE = (
    "bash: reconciler completion bash > ~/.local/share/bash-completion/completions/reconciler; "
    "zsh: reconciler completion zsh > ~/.zfunc/_reconciler (a folder on $fpath); "
    "fish: reconciler completion fish > ~/.config/fish/completions/reconciler.fish"
)


def add_parser(commands: argparse._SubParsersAction, options: Options) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser(
        "completion",
        parents=[options.debug],
        help="print a shell completion script (bash, zsh or fish)",
        description=f"Print the completion script for SHELL on stdout. Install it with {WHERE}.",
    )
    parser.add_argument("shell", choices=SHELLS, metavar="SHELL", help="bash, zsh or fish")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import shtab  # only this command needs it

    from reconciler.cli import build_parser

    script: str = shtab.complete(build_parser(), shell=args.shell)
    sys.stdout.write(script if script.endswith("\n") else script + "\n")
    return 0
