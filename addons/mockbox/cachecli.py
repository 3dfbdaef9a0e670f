"""`mockbox cache stats` and `mockbox cache purge`: they talk to a running instance's admin API.

The admin API rather than Redis directly, because the memory backend lives inside the
running process, and because the instance counts hits and misses: one road for both backends.
With Redis, purging through any one instance purges what every instance shares.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .core.config import ConfigError, load_config


def add_parser(sub: Any) -> None:
    cache = sub.add_parser(
        "cache",
        help="cache stats and purges (of a running instance)",
        description="Inspect or purge the response cache of a running MockBox, through its "
        "admin API (with Redis, the cache every instance shares).",
    )
    actions = cache.add_subparsers(dest="action", metavar="ACTION", required=True)
    stats = actions.add_parser("stats", help="entries, bytes, hit ratio")
    purge = actions.add_parser("purge", help="drop cached answers by host and/or path prefix")
    purge.add_argument("--host", metavar="H", help="api.example.com, *.example.com or host:port")
    purge.add_argument("--path-prefix", metavar="P", help="paths starting with P (/v1/users)")
    purge.add_argument("--all", action="store_true", help="drop every cached answer")
    for p in (stats, purge):
        p.add_argument("--admin", metavar="URL", help="admin server (default: from config, :8081)")
        p.add_argument("--config", type=Path, metavar="FILE", help="configuration file (YAML)")
        p.add_argument("--json", action="store_true", help="print the API's JSON answer")
    stats.set_defaults(handler=_cmd_stats)
    purge.set_defaults(handler=_cmd_purge)


def _cmd_stats(args: argparse.Namespace) -> int:
    answer = _call(args, "GET", "/api/cache")
    if answer is None:
        return 1
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    ratio = answer["hit_ratio"]
    limit = answer["memory_max_bytes"]
    shared = " (shared by every instance)" if answer["backend"] == "redis" else ""
    print(f"backend      {answer['backend']}{shared}")
    print(f"entries      {answer['entries']}")
    print(f"bytes        {answer['bytes']}" + (f" of {limit} max" if limit else ""))
    print(f"hit ratio    {'-' if ratio is None else f'{ratio:.1%}'}")
    print(
        f"this instance: {answer['hits']} hits, {answer['stale']} stale, "
        f"{answer['misses']} misses, {answer['bypasses']} bypasses, "
        f"{answer['coalesced_waits']} coalesced waits"
    )
    return 0


def _cmd_purge(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"all": True} if args.all else {}
    if args.host:
        body["host"] = args.host
    if args.path_prefix:
        body["path_prefix"] = args.path_prefix
    answer = _call(args, "POST", "/api/cache/purge", body)
    if answer is None:
        return 1
    print(json.dumps(answer) if args.json else f"purged {answer['purged']} cached answer(s)")
    return 0


def _call(
    args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None
) -> Any:
    """The admin API's JSON answer, or None after printing why there is none."""
    try:
        config = load_config(args.config, os.environ)
    except ConfigError as e:
        print(f"mockbox: {e}", file=sys.stderr)
        return None
    base = args.admin or _admin_url(config.get("admin", "host"), config.get("admin", "port"))
    request = urllib.request.Request(
        base.rstrip("/") + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    token = config.get("admin", "token")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as e:
        print(f"mockbox: {base}: {_message(e)}", file=sys.stderr)
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        print(
            f"mockbox: no MockBox admin server at {base} ({reason}); is `mockbox run` running? "
            "Point at it with --admin URL.",
            file=sys.stderr,
        )
    return None


def _message(error: urllib.error.HTTPError) -> str:
    try:
        payload = json.loads(error.read())
        return f"{error.code}: {payload.get('message', payload)}"
    except ValueError:
        return f"{error.code} {error.reason}"


def _admin_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"
