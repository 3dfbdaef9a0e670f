"""Keeps other web pages away from the admin API: a page on any site can make the browser of
someone running MockBox send requests to 127.0.0.1, so the API checks where a call comes from.

- Host must name this machine while the admin server listens on loopback: a DNS-rebinding
  page (evil.example resolving to 127.0.0.1) sends `Host: evil.example` and is refused.
- A state-changing call (anything but GET/HEAD/OPTIONS) is refused when the browser says it
  comes from another origin (`Origin` differs from `Host`, or `Sec-Fetch-Site: cross-site`).
- The editor's write endpoints also accept JSON bodies only, which a cross-site form cannot
  send without a CORS preflight that this server never grants.
Scripts (curl, SDKs) send no Origin and pass; the bearer token guards them when one is set.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from limits import RateLimitItemPerMinute, storage, strategies
from tornado.httputil import HTTPServerRequest
from tornado.web import RequestHandler

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def security_headers(handler: RequestHandler) -> None:
    """What every admin answer carries: no MIME sniffing, no framing (clickjacking), no
    referrer leaking the admin URL."""
    handler.set_header("X-Content-Type-Options", "nosniff")
    handler.set_header("X-Frame-Options", "DENY")
    handler.set_header("Referrer-Policy", "no-referrer")


class AuthThrottle:
    """Counts wrong tokens per client address; past `per_minute` of them the address is
    refused for the rest of the minute, so a token cannot be guessed by brute force."""

    def __init__(self, per_minute: int = 10) -> None:
        self.item = RateLimitItemPerMinute(per_minute)
        self.limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    def failed(self, client: str) -> None:
        self.limiter.hit(self.item, "admin-auth", client)

    def retry_after(self, client: str) -> int:
        """Seconds until `client` may try again; 0 when it may now."""
        if self.limiter.test(self.item, "admin-auth", client):
            return 0
        reset = self.limiter.get_window_stats(self.item, "admin-auth", client).reset_time
        return max(1, math.ceil(reset - time.time()))


async def reaches_self(address: Any, bound: tuple[str, int]) -> bool:
    """Whether connecting to `address` (host, port) would reach the server bound to `bound`:
    same port, and a host that resolves to loopback, "any" (0.0.0.0 reaches this machine) or
    the bound address itself. Only a matching port costs a name lookup."""
    host, port = str(address[0]), int(address[1])
    if port != bound[1]:
        return False
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return False  # unresolvable: the connection fails on its own
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]))
        if ip.is_loopback or ip.is_unspecified or str(ip) == bound[0]:
            return True
    return False


def cross_site_refusal(request: HTTPServerRequest, listening_on: str) -> str | None:
    """Why the call must be refused, or None."""
    host = request.host or ""
    if is_loopback(listening_on) and not is_loopback(_host_name(host)):
        return (
            f"the Host header {host!r} does not name this machine; open the admin server as "
            "http://127.0.0.1:PORT or http://localhost:PORT"
        )
    if request.method in SAFE_METHODS:
        return None
    origin = request.headers.get("Origin")
    if origin is not None and (origin == "null" or urlsplit(origin).netloc.lower() != host.lower()):
        return f"cross-site request from {origin} refused"
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        return "cross-site request refused"
    return None


def _host_name(host: str) -> str:
    """The name part of a Host header: `127.0.0.1:8081` → 127.0.0.1, `[::1]:8081` → ::1."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
