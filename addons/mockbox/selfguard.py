"""Keeps the proxy from connecting to MockBox itself. A proxy client must not reach the admin
API through the proxy (it changes what the proxy answers, and runs AI calls), and a request to
the proxy's own port would loop.

What counts is where a connection would land, not how its target is spelled: a target is
MockBox itself when its port is one MockBox listens on (the admin port, the proxy's ports) and
any address its name resolves to belongs to this machine (`127.1`, `2130706433`, `0x7f.1`,
`[::ffff:127.0.0.1]`, `0.0.0.0`, `localhost`, a name in DNS, an interface's own address).

- `request` answers such a request with a JSON 403 before anything connects.
- `server_connect` sees every connection mitmproxy opens (requests, CONNECT tunnels, TCP
  passthrough, cache refreshes). It resolves the name once and either refuses the connection
  or pins it to the address it checked, so that the name cannot resolve elsewhere between the
  check and the connect (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from mitmproxy import ctx, http
from mitmproxy.proxy import server_hooks

from .admin import AdminServer
from .core.clientid import parse_address
from .flows import answer_json


def is_own_address(ip: str) -> bool:
    """Whether connecting to `ip` reaches this machine: loopback, unspecified (0.0.0.0 and ::
    connect here) or an address of one of its interfaces. The kernel answers the last one:
    binding a socket succeeds exactly for local addresses."""
    address = parse_address(ip)
    if address is None:
        return False
    if address.is_loopback or address.is_unspecified:
        return True
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((str(address), 0))
    except OSError:
        return False
    return True


async def resolve(host: str, port: int) -> list[str]:
    """The addresses a connection to `host` tries, as the connection itself would find them
    (the system resolver also reads `127.1` and `0177.0.0.1`); [] when it cannot resolve."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in infos))


class SelfGuard:
    def __init__(self, admin: AdminServer) -> None:
        self.admin = admin

    def own_ports(self) -> dict[int, str]:
        """The ports MockBox listens on, with what listens there."""
        ports: dict[int, str] = {}
        proxyserver: Any = ctx.master.addons.get("proxyserver")
        for server in getattr(proxyserver, "servers", ()):
            for address in server.listen_addrs:
                ports[int(address[1])] = "proxy"
        if self.admin.bound is not None:
            ports[int(self.admin.bound[1])] = "admin"
        return ports

    def _refusal(self, port: int, what: str) -> str:
        if what == "admin":
            return (
                f"MockBox does not forward requests to its own admin server (port {port}); "
                "open it directly, without the proxy"
            )
        return f"MockBox does not forward requests to itself (port {port}): they would loop"

    async def request(self, flow: http.HTTPFlow) -> None:
        """Last in the chain: a request no addon answered is about to be forwarded."""
        if flow.response or flow.error or not flow.live:
            return
        host, port = flow.request.host, flow.request.port
        what = self.own_ports().get(port)
        if what is None:
            return
        if any(is_own_address(ip) for ip in await resolve(host, port)):
            refusal = {"error": "FORWARD_TO_SELF_REFUSED", "message": self._refusal(port, what)}
            answer_json(flow, 403, refusal, "guard")

    async def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        server = data.server
        if server.address is None or server.error:
            return
        host, port = str(server.address[0]), int(server.address[1])
        what = self.own_ports().get(port)
        if what is None:
            return  # a port MockBox does not listen on cannot reach it, wherever it points
        addresses = await resolve(host, port)
        if not addresses:
            server.error = f"cannot resolve {host}"  # fail closed: it might resolve here later
        elif any(is_own_address(ip) for ip in addresses):
            server.error = self._refusal(port, what)  # mitmproxy logs it
        else:
            server.address = (addresses[0], port)  # exactly the address that was checked
