"""The `mockbox` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .core.config import ConfigError, load_config


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    result: int = args.handler(args)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mockbox",
        description="Mock, record, rate-limit, cache and synthesize HTTP APIs, on mitmproxy.",
    )
    parser.add_argument("--version", action="version", version=f"mockbox {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="start the proxy", description="Start the MockBox proxy.")
    _proxy_arguments(run)
    run.set_defaults(handler=_cmd_run)

    record = sub.add_parser(
        "record",
        help="forward everything upstream and write what was seen as mocks",
        description="Forward every request to the real upstream and write what it saw as mock "
        "files under <mocks>/recorded/NAME/, one file per host, as it goes.",
    )
    record.add_argument("--session", required=True, metavar="NAME", help="session name")
    record.add_argument(
        "--generalize",
        action="store_true",
        help="turn repeated ids, UUIDs and hashes in paths into {id} templates",
    )
    _proxy_arguments(record)
    record.set_defaults(handler=_cmd_record)

    replay = sub.add_parser(
        "replay",
        help="serve one recorded session, strictly",
        description="Serve only <mocks>/recorded/NAME/; a request it cannot answer gets the "
        "404 that names the nearest recorded requests.",
    )
    replay.add_argument("--session", required=True, metavar="NAME", help="session name")
    _proxy_arguments(replay)
    replay.set_defaults(handler=_cmd_replay)

    validate = sub.add_parser(
        "validate",
        help="check mock files against the schema",
        description="Check mock files (or folders of them); exit 1 with file:line messages.",
    )
    validate.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    validate.set_defaults(handler=_cmd_validate)
    return parser


def _proxy_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mocks", metavar="DIR", help="folder of mock files (default ./mocks)")
    p.add_argument("--port", type=int, metavar="N", help="proxy port (default 8080)")
    p.add_argument("--host", metavar="ADDR", help="proxy address (default: all interfaces)")
    p.add_argument("--admin-port", type=int, metavar="M", help="admin port (default 8081; 0: off)")
    p.add_argument("--admin-host", metavar="HOST", help="admin address (default 127.0.0.1)")
    p.add_argument("--config", type=Path, metavar="FILE", help="configuration file (YAML)")
    p.add_argument("--mode", metavar="MODE", help="regular (default) or reverse:https://api.host")
    p.add_argument("--unmatched", choices=("404", "upstream"), help="when no mock matches")
    p.add_argument("--redis", metavar="URL", help="Redis URL for shared state")
    p.add_argument("--region", metavar="NAME", help="region name of this instance")
    p.add_argument(
        "--set",
        dest="setoptions",
        action="append",
        default=[],
        metavar="OPTION=VALUE",
        help="any mitmproxy or mockbox_* option (repeatable)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every flow and debug detail")


def _option_updates(args: argparse.Namespace) -> dict[str, Any]:
    """Flags → mitmproxy option values; unset flags fall back to config and environment."""
    config = load_config(args.config, os.environ)
    updates: dict[str, Any] = {
        "listen_host": args.host if args.host is not None else config.get("proxy", "host"),
        "listen_port": args.port if args.port is not None else config.get("proxy", "port"),
        "mode": [args.mode or config.get("proxy", "mode")],
    }
    if args.config is not None:
        updates["mockbox_config"] = str(args.config)
    for flag, option in (
        ("mocks", "mockbox_mocks"),
        ("admin_port", "mockbox_admin_port"),
        ("admin_host", "mockbox_admin_host"),
        ("unmatched", "mockbox_unmatched"),
        ("redis", "mockbox_redis"),
        ("region", "mockbox_region"),
    ):
        value = getattr(args, flag)
        if value is not None:
            updates[option] = value
    return updates


def _cmd_run(args: argparse.Namespace) -> int:
    from . import runner  # mitmproxy loads slowly; only commands that need it import it

    try:
        updates = _option_updates(args)
    except ConfigError as e:
        print(f"mockbox: {e}", file=sys.stderr)
        return 2
    return runner.run(updates, set_options=args.setoptions, verbose=args.verbose)


def _cmd_record(args: argparse.Namespace) -> int:
    from . import runner

    try:
        updates = _option_updates(args)
    except ConfigError as e:
        print(f"mockbox: {e}", file=sys.stderr)
        return 2
    updates["mockbox_record"] = args.session
    updates["mockbox_record_generalize"] = args.generalize
    return runner.run(updates, set_options=args.setoptions, verbose=args.verbose)


def _cmd_replay(args: argparse.Namespace) -> int:
    from . import runner
    from .recorder import session_folder

    try:
        updates = _option_updates(args)
        root = Path(args.mocks or load_config(args.config, os.environ).get("mocks"))
    except ConfigError as e:
        print(f"mockbox: {e}", file=sys.stderr)
        return 2
    folder = session_folder(root, args.session)
    if not folder.is_dir():
        known = sorted(p.name for p in (root / "recorded").glob("*") if p.is_dir())
        print(
            f"mockbox: no recorded session {args.session!r} in {folder.parent}"
            + (f" (sessions: {', '.join(known)})" if known else ""),
            file=sys.stderr,
        )
        return 2
    updates["mockbox_mocks"] = str(folder)
    updates["mockbox_unmatched"] = "404"
    return runner.run(updates, set_options=args.setoptions, verbose=args.verbose)


def _cmd_validate(args: argparse.Namespace) -> int:
    from .core.validate import validate_paths

    report = validate_paths(args.paths)
    for problem in report.problems:
        print(problem)
    status = "ok" if not report.problems else f"{len(report.problems)} problem(s)"
    print(f"{report.files} file(s), {report.mocks} mock(s): {status}", file=sys.stderr)
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
