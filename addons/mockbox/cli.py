"""The `mockbox` command."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
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

    _import_parsers(sub)

    validate = sub.add_parser(
        "validate",
        help="check mock files against the schema",
        description="Check mock files (or folders of them); exit 1 with file:line messages.",
    )
    validate.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    validate.add_argument(
        "--config", type=Path, metavar="FILE", help="configuration file (its mock_files limits)"
    )
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


def _import_parsers(sub: Any) -> None:
    imp = sub.add_parser(
        "import",
        help="write mocks from a HAR, an OpenAPI document or WireMock mappings",
        description="Write mock files from what you already have. Problems are listed with "
        "their place; whatever could be imported is imported (exit 1 when there were problems).",
    )
    kinds = imp.add_subparsers(dest="kind", metavar="KIND", required=True)
    har = kinds.add_parser("har", help="a HAR 1.2 file (browser devtools, mitmproxy, ...)")
    har.add_argument("file", type=Path, metavar="FILE")
    har.add_argument("--out", type=Path, metavar="DIR", help="default <mocks>/recorded/<name>")
    har.add_argument("--generalize", action="store_true", help="ids in paths become {id}")
    har.add_argument("--config", type=Path, metavar="FILE", help="configuration file (YAML)")
    har.set_defaults(handler=_cmd_import_har)
    openapi = kinds.add_parser("openapi", help="an OpenAPI 3.0 or 3.1 document (YAML or JSON)")
    openapi.add_argument("file", type=Path, metavar="FILE")
    openapi.add_argument("--out", type=Path, metavar="DIR", help="default <mocks>/openapi")
    openapi.add_argument("--config", type=Path, metavar="FILE", help="configuration file (YAML)")
    openapi.set_defaults(handler=_cmd_import_openapi)
    wiremock = kinds.add_parser("wiremock", help="a folder of WireMock stub mappings (JSON)")
    wiremock.add_argument("folder", type=Path, metavar="DIR")
    wiremock.add_argument("--out", type=Path, metavar="DIR", help="default <mocks>/wiremock")
    wiremock.add_argument("--config", type=Path, metavar="FILE", help="configuration file (YAML)")
    wiremock.set_defaults(handler=_cmd_import_wiremock)

    exp = sub.add_parser("export", help="write a recorded session out as HAR")
    formats = exp.add_subparsers(dest="kind", metavar="FORMAT", required=True)
    har_out = formats.add_parser("har", help="HAR 1.2")
    har_out.add_argument("--session", required=True, metavar="NAME")
    har_out.add_argument("--out", type=Path, metavar="FILE", help="default NAME.har")
    har_out.add_argument("--mocks", metavar="DIR", help="folder of mock files (default ./mocks)")
    har_out.add_argument("--config", type=Path, metavar="FILE", help="configuration file (YAML)")
    har_out.set_defaults(handler=_cmd_export_har)


def _proxy_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mocks", metavar="DIR", help="folder of mock files (default ./mocks)")
    p.add_argument("--port", type=int, metavar="N", help="proxy port (default 8080)")
    p.add_argument("--host", metavar="ADDR", help="proxy address (default 127.0.0.1; 0.0.0.0: all)")
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


def _cmd_run(args: argparse.Namespace, **extra: Any) -> int:
    """Start the proxy; `extra` option values (from record and replay) win over the flags."""
    from . import runner  # mitmproxy loads slowly; only commands that need it import it

    try:
        updates = _option_updates(args)
    except ConfigError as e:
        print(f"mockbox: {e}", file=sys.stderr)
        return 2
    updates.update(extra)
    return runner.run(updates, set_options=args.setoptions, verbose=args.verbose)


def _cmd_record(args: argparse.Namespace) -> int:
    return _cmd_run(args, mockbox_record=args.session, mockbox_record_generalize=args.generalize)


def _cmd_replay(args: argparse.Namespace) -> int:
    from .recorder import session_folder

    try:
        root = _mocks_root(args)
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
    return _cmd_run(args, mockbox_mocks=str(folder), mockbox_unmatched="404")


def _mocks_root(args: argparse.Namespace) -> Path:
    mocks = getattr(args, "mocks", None)
    return Path(mocks or load_config(args.config, os.environ).get("mocks"))


class _Progress:
    """Progress of a long import on stderr, redrawn in place on a terminal (twice a second),
    a line every few seconds otherwise, and always the last step."""

    def __init__(self, label: str) -> None:
        self.label, self.last = label, 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        tty = sys.stderr.isatty()
        if done == total or now - self.last >= (0.5 if tty else 5.0):
            self.last = now
            line = f"{self.label}: {done}/{total}"
            if tty:  # one line, redrawn in place
                print(f"\r{line}", end="\n" if done == total else "", file=sys.stderr, flush=True)
            else:
                print(line, file=sys.stderr, flush=True)


def _summary(problems: list[str], line: str) -> int:
    for problem in problems:
        print(f"  problem: {problem}", file=sys.stderr)
    status = f"{len(problems)} problem(s) listed above" if problems else "no problems"
    print(f"{line}; {status}", file=sys.stderr)
    return 1 if problems else 0


def _cmd_import_har(args: argparse.Namespace) -> int:
    from .core.recording import Rules
    from .har import import_har

    try:
        config = load_config(args.config, os.environ)
    except ConfigError as e:
        print(f"mockbox: {e}", file=sys.stderr)
        return 2
    out = args.out or Path(config.get("mocks")) / "recorded" / args.file.stem
    rules = Rules.from_config(config.get("record"), config.get("redact"), args.generalize)
    report = import_har(args.file, out, rules, _Progress(f"importing {args.file}"))
    if not report.entries and report.problems:
        return _summary(report.problems, "nothing imported") + 1
    return _summary(
        report.problems,
        f"{report.imported} of {report.entries} entries into {len(report.files)} file(s) "
        f"under {out}",
    )


def _cmd_import_openapi(args: argparse.Namespace) -> int:
    from .core.openapi_import import import_openapi

    return _import_to_file(args, args.file, "openapi", import_openapi, "operation(s)")


def _cmd_import_wiremock(args: argparse.Namespace) -> int:
    from .core.wiremock_import import import_wiremock

    return _import_to_file(args, args.folder, "wiremock", import_wiremock, "mapping(s)")


def _import_to_file(
    args: argparse.Namespace,
    source: Path,
    folder: str,
    importer: Callable[[Path, _Progress], Any],
    noun: str,
) -> int:
    """Run an importer that makes one mock file, write it to --out (or <mocks>/<folder>)."""
    try:
        out = args.out or _mocks_root(args) / folder
    except ConfigError as e:
        print(f"mockbox: {e}", file=sys.stderr)
        return 2
    result = importer(source, _Progress(f"importing {source}"))
    if result.fatal:
        return _summary(result.problems, "nothing imported") + 1
    target = result.write(out)
    return _summary(result.problems, f"{len(result.mocks)} {noun} as mocks in {target}")


def _cmd_export_har(args: argparse.Namespace) -> int:
    from .core.redaction import Policy
    from .har import export_har
    from .recorder import session_folder

    try:
        folder = session_folder(_mocks_root(args), args.session)
        policy = Policy.from_config(load_config(args.config, os.environ).get("redact"))
    except ConfigError as e:
        print(f"mockbox: {e}", file=sys.stderr)
        return 2
    if not folder.is_dir():
        print(f"mockbox: no recorded session {args.session!r} in {folder.parent}", file=sys.stderr)
        return 2
    target = args.out or Path(f"{args.session}.har")
    try:
        count = export_har(folder, target, policy)
    except ValueError as e:
        print(f"mockbox: session {args.session!r} has broken mock files: {e}", file=sys.stderr)
        return 1
    print(f"{count} entries written to {target}", file=sys.stderr)
    return 0


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
    from .core.safefile import FileLimits
    from .core.validate import validate_paths

    try:
        config = load_config(args.config, os.environ)
    except ConfigError as e:
        print(f"mockbox: {e}", file=sys.stderr)
        return 2
    report = validate_paths(args.paths, FileLimits.from_config(config.get("mock_files")))
    for problem in report.problems:
        print(problem)
    status = "ok" if not report.problems else f"{len(report.problems)} problem(s)"
    print(f"{report.files} file(s), {report.mocks} mock(s): {status}", file=sys.stderr)
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
