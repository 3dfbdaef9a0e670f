"""`mockbox run`: a lean mitmproxy master with only the addons MockBox needs.

A stock `mitmdump` also loads some thirty default addons that each see every flow; leaving
them out is most of why this master answers a mock faster.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from mitmproxy import ctx, exceptions, hooks, master, options
from mitmproxy.addons import (
    block,
    core,
    errorcheck,
    next_layer,
    proxyserver,
    termlog,
    tlsconfig,
)

from . import __version__, stack
from .admin import AdminServer
from .apiguard import is_loopback as _is_loopback
from .mocks import MockServer


class LeanMaster(master.Master):
    def __init__(self, opts: options.Options, extra_addons: list[Any]) -> None:
        super().__init__(opts, with_termlog=False)
        self.addons.add(
            termlog.TermLog(),
            core.Core(),
            block.Block(),  # mitmproxy's guard: clients from public addresses are refused
            proxyserver.Proxyserver(),
            next_layer.NextLayer(),
            tlsconfig.TlsConfig(),
            errorcheck.ErrorCheck(repeat_errors_on_stderr=True),
            *extra_addons,
        )


class Banner:
    """Tells the user, once everything listens, where MockBox is and how to use it."""

    def running(self) -> None:
        ps: Any = ctx.master.addons.get("proxyserver")
        mocks: MockServer = ctx.master.addons.get("mockserver")
        admin: AdminServer = ctx.master.addons.get("adminserver")
        addrs = ps.listen_addrs()
        if not addrs:
            return
        host, port = addrs[0][:2]
        shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
        proxy_url = f"http://{shown}:{port}"
        mode = ctx.options.mode[0] if ctx.options.mode else "regular"
        library = mocks.library
        count = len(library.index) if library else 0
        folder = library.root if library else "?"
        cert = Path(ctx.options.confdir).expanduser() / "mitmproxy-ca-cert.pem"
        lines = [
            f"MockBox {__version__}: {count} mocks from {folder} (unmatched: {mocks.unmatched})",
            f"  proxy  {proxy_url}  ({mode} mode)",
        ]
        if not _is_loopback(host):
            lines.append(
                f"  note   the proxy listens on {host or 'all interfaces'}: anyone who reaches "
                "this port can use it, its upstreams and its AI budget (SECURITY.md)"
            )
        if admin.bound:
            admin_url = f"http://{admin.bound[0]}:{admin.bound[1]}"
            lines.append(f"  admin  {admin_url}  (the editor; /healthz, /metrics)")
        example = _example_path(mocks)
        if mode.startswith("reverse:"):
            lines += [
                "Send requests to the proxy as if it were the API:",
                f"  curl {proxy_url}{example[1]}",
            ]
        else:
            lines += [
                "Point an app at it:",
                f"  export HTTP_PROXY={proxy_url} HTTPS_PROXY={proxy_url}",
                f"  curl -x {proxy_url} http://{example[0]}{example[1]}",
            ]
        lines += [
            "HTTPS interception: have the client trust mitmproxy's CA certificate:",
            f"  {cert}",
            f"  (curl --cacert {cert} ..., or SSL_CERT_FILE / REQUESTS_CA_BUNDLE={cert})",
        ]
        print("\n".join(lines), flush=True)


def _example_path(mocks: MockServer) -> tuple[str, str]:
    """A host and path of a loaded GET mock with no parameters, for the example command."""
    if mocks.library is not None:
        for mock in mocks.library.index.mocks:
            if (
                mock.path.param_count == 0
                and not mock.path.catchall
                and ({"GET", "*"} & mock.methods)
            ):
                host = str(mock.host) if mock.host and not mock.host.wildcard else "api.example.com"
                return host, mock.path.text
    return "api.example.com", "/"


async def _serve(updates: dict[str, Any], set_options: list[str]) -> int:
    opts = options.Options()
    lean = LeanMaster(opts, [*stack.build(), Banner()])
    try:
        opts.update(**updates)
        if set_options:
            opts.set(*set_options)
        # Like mitmproxy's script loader, configure every addon with every option once, so
        # addons behave the same here as under a stock `mitmdump -s`.
        lean.addons.trigger(hooks.ConfigureHook(set(opts.keys())))
    except exceptions.OptionsError as e:
        print(f"mockbox: {e}", file=sys.stderr)
        return 2
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lean.shutdown)
    await lean.run()
    return 0


def run(updates: dict[str, Any], set_options: list[str], verbose: bool = False) -> int:
    """Run the proxy with these mitmproxy option values until SIGINT/SIGTERM."""
    logging.getLogger().setLevel(logging.DEBUG)
    for noisy in ("tornado", "asyncio", "hpack", "passlib", "faker", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    updates.setdefault("termlog_verbosity", "debug" if verbose else "info")
    try:
        return asyncio.run(_serve(updates, set_options))
    except KeyboardInterrupt:
        return 130
