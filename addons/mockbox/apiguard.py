"""Keeps other web pages away from the admin API: a page on any site can make the browser of
someone running MockBox send requests to 127.0.0.1, so the admin server checks where a call
comes from.

- Host must name this machine while the admin server listens on loopback, on every route
  (/healthz, /metrics and the editor page too): a DNS-rebinding page (evil.example resolving
  to 127.0.0.1) sends `Host: evil.example` and is refused.
- A state-changing call (anything but GET/HEAD/OPTIONS) is refused when the browser says it
  comes from another origin (`Origin` differs from `Host`, or `Sec-Fetch-Site: cross-site`).
- The editor's write endpoints also accept JSON bodies only, which a cross-site form cannot
  send without a CORS preflight that this server never grants.
Scripts (curl, SDKs) send no Origin and pass; the bearer token guards them when one is set.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from urllib.parse import urlsplit

from limits import RateLimitItemPerMinute, storage, strategies
from tornado.httputil import HTTPServerRequest
from tornado.web import RequestHandler

from .core.clientid import parse_address

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_loopback(host: str) -> bool:
    """`localhost`, or a loopback address however written (`::ffff:127.0.0.1` too, on every
    Python version: `ipaddress` only maps IPv4-mapped addresses itself from 3.13 on)."""
    if host.lower() in ("localhost", "ip6-localhost"):
        return True
    address = parse_address(host)
    return address is not None and address.is_loopback


def security_headers(handler: RequestHandler) -> None:
    """What every admin answer carries: no MIME sniffing, no framing (clickjacking), no
    referrer leaking the admin URL."""
    handler.set_header("X-Content-Type-Options", "nosniff")
    handler.set_header("X-Frame-Options", "DENY")
    handler.set_header("Referrer-Policy", "no-referrer")


def token_matches(given: str, token: str) -> bool:
    """Constant-time comparison; of digests, so that not even the token's length shows."""
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(token.encode()).digest()
    )


class AuthThrottle:
    """Counts wrong tokens per client address; past `per_minute` of them, that address's wrong
    tokens are refused for the rest of the minute (429). The right token is never refused:
    someone guessing from a shared address must not lock its owner out."""

    def __init__(self, per_minute: int = 10) -> None:
        self.item = RateLimitItemPerMinute(per_minute)
        self.limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    def failed(self, client: str) -> None:
        self.limiter.hit(self.item, "admin-auth", client)

    def retry_after(self, client: str) -> int:
        """Seconds until `client` may guess again; 0 when it may now."""
        if self.limiter.test(self.item, "admin-auth", client):
            return 0
        reset = self.limiter.get_window_stats(self.item, "admin-auth", client).reset_time
        return max(1, math.ceil(reset - time.time()))


def host_refusal(request: HTTPServerRequest, listening_on: str) -> str | None:
    """Why a call to an admin server listening on `listening_on` must be refused for its Host
    header (DNS rebinding), or None. Beyond loopback any name may lead here (an ingress, the
    pod's address), and the token guards what matters."""
    host = request.host or ""
    if is_loopback(listening_on) and not is_loopback(_host_name(host)):
        return (
            f"the Host header {host!r} does not name this machine; open the admin server as "
            "http://127.0.0.1:PORT or http://localhost:PORT"
        )
    return None


def cross_site_refusal(request: HTTPServerRequest) -> str | None:
    """Why a state-changing call must be refused as coming from another site, or None."""
    if request.method in SAFE_METHODS:
        return None
    host = request.host or ""
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
