"""The `mockbox` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__, cachecli
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

    validate = sub.add_parser(
        "validate",
        help="check mock files against the schema",
        description="Check mock files (or folders of them); exit 1 with file:line messages.",
    )
    validate.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    validate.set_defaults(handler=_cmd_validate)

    gen = sub.add_parser(
        "generate",
        help="generate one mock with the AI provider",
        description="Generate one mock for METHOD URL with the configured AI provider "
        "(offline by default), grounded in the mocks folder, and print it as YAML.",
    )
    gen.add_argument("method", metavar="METHOD")
    gen.add_argument("url", metavar="URL", help="for example https://api.example.com/users/7")
    gen.add_argument("--description", default="", help="what the endpoint does")
    gen.add_argument("--schema-hint", default="", help="fields or shape the body should have")
    gen.add_argument("--complexity", choices=("simple", "medium", "complex"), default="medium")
    gen.add_argument("--body", help="the request body (JSON), for POST/PUT/PATCH")
    gen.add_argument("--save", type=Path, metavar="FILE", help="append the mock to this file")
    gen.add_argument("--mocks", type=Path, metavar="DIR", help="mocks folder used as examples")
    gen.add_argument("--provider", help="offline, openai, anthropic or openai-compatible")
    gen.add_argument("--config", type=Path, metavar="FILE", help="configuration file (YAML)")
    gen.set_defaults(handler=_cmd_generate)
    cachecli.add_parser(sub)
    return parser


def _proxy_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mocks", metavar="DIR", help="folder of mock files (default ./mocks)")
    p.add_argument("--port", type=int, metavar="N", help="proxy port (default 8080)")
    p.add_argument("--host", metavar="ADDR", help="proxy address (default: all interfaces)")
    p.add_argument("--admin-port", type=int, metavar="M", help="admin port (default 8081; 0: off)")
    p.add_argument("--admin-host", metavar="HOST", help="admin address (default 127.0.0.1)")
    p.add_argument("--config", type=Path, metavar="FILE", help="configuration file (YAML)")
    p.add_argument("--mode", metavar="MODE", help="regular (default) or reverse:https://api.host")
    p.add_argument(
        "--unmatched", choices=("ai", "404", "upstream"), help="when no mock matches (default ai)"
    )
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


def _cmd_generate(args: argparse.Namespace) -> int:
    import json

    from . import generate

    try:
        config = load_config(args.config, os.environ)
        body = json.loads(args.body) if args.body else None
    except (ConfigError, ValueError) as e:
        print(f"mockbox: {e}", file=sys.stderr)
        return 2
    if args.provider:
        config.data["ai"]["provider"] = args.provider
    request = generate.GenerateArgs(
        args.method, args.url, args.description, args.schema_hint, args.complexity, body
    )
    mocks = args.mocks or Path(config.get("mocks"))
    return generate.run(config, mocks, request, args.save)


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
