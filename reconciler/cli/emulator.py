"""``reconciler emulator serve``: a local Dataverse stand-in over HTTP (spec §6)."""

from __future__ import annotations

import argparse
import logging
import sys

from reconciler.cli.common import Options
from reconciler.errors import UsageError

DEFAULT_DB = ".reconciler/local.db"
DEFAULT_PORT = 8123
# As in reconciler.emulator.injected (not imported here: every command would pay for it).
FAULT_KINDS = "429, 503, drop, drop-after, slow, truncated, html, content-type, odd-500"


def add_parser(commands: argparse._SubParsersAction, options: Options) -> None:  # type: ignore[type-arg]
    group = commands.add_parser("emulator", help="run the local Dataverse emulator")
    actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    serve = actions.add_parser(
        "serve",
        parents=[options.debug, options.verbose],
        help="serve the emulator over HTTP on 127.0.0.1",
        description="A Dataverse stand-in on a SQLite file, over HTTP on 127.0.0.1 (host names "
        "127.0.0.1, [::1] and localhost). Point --target http://127.0.0.1:PORT at it. -v prints "
        "one line per request (method, path, status, time; never bodies).",
    )
    serve.add_argument(
        "--db",
        default=DEFAULT_DB,
        metavar="PATH",
        help=f"the SQLite file holding the org (default: {DEFAULT_DB})",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        metavar="N",
        help=f"default {DEFAULT_PORT}; 0 = any",
    )
    serve.add_argument("--token", metavar="T", help="accept only 'Authorization: Bearer T'")
    serve.add_argument(
        "--latency-ms", type=float, default=0.0, metavar="MS", help="delay every answer by MS"
    )
    faults = serve.add_argument_group("injected faults (reproducible with --seed)")
    faults.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="give that fraction of requests (0 to 1) a fault of --fault-kinds",
    )
    faults.add_argument(
        "--fault-kinds",
        default="429,503",
        metavar="K,K",
        help=f"which faults, chosen evenly: {FAULT_KINDS} (default: %(default)s)",
    )
    faults.add_argument(
        "--fault-on",
        choices=("all", "reads", "writes"),
        default="all",
        help="inject faults into all requests, only reads (GET) or only writes",
    )
    faults.add_argument(
        "--fault-retry-after",
        type=int,
        default=1,
        metavar="S",
        help="Retry-After of an injected 429 (default: %(default)s)",
    )
    faults.add_argument(
        "--slow-ms",
        type=float,
        default=2000.0,
        metavar="MS",
        help="how late a 'slow' fault answers (default: %(default)s)",
    )
    faults.add_argument("--seed", type=int, metavar="N", help="make the faults reproducible")
    limits = serve.add_argument_group("service-protection limits (default: Dataverse's)")
    limits.add_argument(
        "--max-requests",
        type=int,
        default=6000,
        metavar="N",
        help="requests per window and user (default: %(default)s)",
    )
    limits.add_argument(
        "--max-concurrent",
        type=int,
        default=52,
        metavar="N",
        help="requests in flight at once (default: %(default)s)",
    )
    limits.add_argument(
        "--window-seconds",
        type=float,
        default=300.0,
        metavar="S",
        help="the sliding window of --max-requests (default: %(default)s)",
    )
    serve.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from reconciler.emulator import EmulatorConfig
    from reconciler.emulator.injected import parse_kinds
    from reconciler.emulator.server import serve

    if not 0.0 <= args.fault_rate <= 1.0:
        raise UsageError("--fault-rate must be between 0 and 1")
    try:
        kinds = parse_kinds(args.fault_kinds)
    except ValueError as exc:
        raise UsageError(f"--fault-kinds: {exc}") from None
    if args.slow_ms < 0 or args.fault_retry_after < 0:
        raise UsageError("--slow-ms and --fault-retry-after must be >= 0")
    if not 0 <= args.port <= 65535:
        raise UsageError("--port must be between 0 and 65535")
    if args.latency_ms < 0 or args.max_requests < 1 or args.max_concurrent < 1:
        raise UsageError("--latency-ms must be >= 0; --max-requests and --max-concurrent >= 1")
    config = EmulatorConfig(
        token=args.token,
        latency_ms=args.latency_ms,
        fault_rate=args.fault_rate,
        fault_kinds=kinds,
        fault_on=args.fault_on,
        fault_retry_after=args.fault_retry_after,
        slow_ms=args.slow_ms,
        seed=args.seed,
        max_requests=args.max_requests,
        max_concurrent=args.max_concurrent,
        window_seconds=args.window_seconds,
    )

    if args.verbose:  # one line per request: method, path, status, time (never bodies)
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        emulator_log = logging.getLogger("reconciler.emulator")
        emulator_log.addHandler(handler)
        emulator_log.setLevel(logging.INFO)

    def announce(url: str) -> None:
        sys.stdout.write(
            f"Dataverse emulator listening on {url} (database {args.db})\n"
            f"Use --target {url}; press Ctrl-C to stop.\n"
        )
        sys.stdout.flush()

    try:
        serve(args.db, args.port, config, announce)
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror}") from None
    sys.stdout.write("Emulator stopped.\n")
    return 0
