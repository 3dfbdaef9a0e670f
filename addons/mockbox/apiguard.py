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

import ipaddress
from urllib.parse import urlsplit

from tornado.httputil import HTTPServerRequest

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
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
