"""The policy of MockBox's shared HTTP cache (RFC 9111, RFC 5861): whether a request may be
answered from the cache, whether an answer may be stored, for how long, and under which key.

Whether a response may be stored at all (no-store, private, Authorization, status codes,
methods) is decided by hishel's sans-I/O state machine (`hishel.CacheMiss`), and Cache-Control
is parsed by hishel's parser. What hishel leaves to its caller is here: freshness is computed
once, when an answer is stored (RFC 9111 section 4.2, with the origin's Age and Date), so
serving a hit only compares numbers; the RFC 5861 windows; per-route TTL rules for answers
whose origin says nothing; and keys that include the Vary'd request headers.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import hishel
from hishel._core._headers import CacheControl, parse_cache_control

from .request import Headers

CACHEABLE_METHODS = frozenset({"GET", "HEAD"})
_UNSAFE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
_HISHEL_OPTIONS = hishel.CacheOptions(shared=True, supported_methods=sorted(CACHEABLE_METHODS))
# Headers a stored answer never keeps: hop-by-hop ones (hishel drops those), the origin's Age
# (MockBox computes its own) and the ones MockBox adds to each answer it sends.
_NOT_STORED = frozenset({"age", "x-cache-status", "x-mockbox-source"})


class CachePolicyError(ValueError):
    pass


# --- configuration: defaults and per-route rules ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Defaults:
    """What applies when neither the origin nor a rule says otherwise."""

    ttl: int = 0
    stale_while_revalidate: int = 0
    stale_if_error: int = 0
    max_body_bytes: int = 1 << 20


@dataclass(frozen=True, slots=True)
class Rule:
    """`host` and `path` are globs (`*.example.com`, `/v1/*`); values in seconds."""

    host: str | None
    path: str
    ttl: int | None = None
    cdn_ttl: int | None = None
    stale_while_revalidate: int | None = None
    stale_if_error: int | None = None

    def matches(self, host: str, path: str) -> bool:
        return (self.host is None or _glob(self.host).fullmatch(host.lower()) is not None) and (
            _glob(self.path).fullmatch(path) is not None
        )


_RULE_NUMBERS = ("ttl", "cdn_ttl", "stale_while_revalidate", "stale_if_error")
_glob_cache: dict[str, re.Pattern[str]] = {}


def _glob(pattern: str) -> re.Pattern[str]:
    """`*` matches anything (slashes included), everything else is literal."""
    compiled = _glob_cache.get(pattern)
    if compiled is None:
        compiled = re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.S)
        _glob_cache[pattern] = compiled
    return compiled


def parse_rules(raw: Any, where: str = "cache.rules") -> tuple[Rule, ...]:
    """Rules from configuration; the first rule that matches a request applies."""
    if not isinstance(raw, list):
        raise CachePolicyError(f"{where} must be a list")
    rules = []
    for i, item in enumerate(raw):
        here = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise CachePolicyError(f"{here} must be a mapping")
        unknown = set(item) - {"host", "path", *_RULE_NUMBERS}
        if unknown:
            known = ", ".join(("host", "path", *_RULE_NUMBERS))
            raise CachePolicyError(f"{here}: unknown key {sorted(unknown)[0]!r} (known: {known})")
        host, path = item.get("host"), item.get("path", "*")
        if host is not None and (not isinstance(host, str) or not host):
            raise CachePolicyError(f"{here}.host must be a host name or glob")
        if not isinstance(path, str) or not path.startswith(("/", "*")):
            raise CachePolicyError(f"{here}.path must be a path glob starting with / or *")
        numbers: dict[str, int] = {}
        for name in _RULE_NUMBERS:
            value = item.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise CachePolicyError(f"{here}.{name} must be a whole number of seconds >= 0")
            numbers[name] = value
        rules.append(Rule(host.lower() if host else None, path, **numbers))
    return tuple(rules)


def match_rule(rules: Sequence[Rule], host: str, path: str) -> Rule | None:
    return next((rule for rule in rules if rule.matches(host, path)), None)


# --- requests ---------------------------------------------------------------------------------


def request_bypass(method: str, headers: Headers) -> str | None:
    """Why this request may neither be answered from the cache nor stored, or None."""
    if method not in CACHEABLE_METHODS:
        return "method"
    if "range" in headers:
        return "range"
    if parse_cache_control(headers.get("cache-control")).no_store:
        return "no-store"
    return None


def wants_refresh(headers: Headers) -> bool:
    """The client asks for an answer fresh from the origin (a browser's hard reload)."""
    cc = parse_cache_control(headers.get("cache-control"))
    if cc.no_cache or cc.max_age == 0:
        return True
    return "cache-control" not in headers and "no-cache" in headers.get("pragma", "").lower()


def invalidates(method: str, status: int) -> bool:
    """RFC 9111 section 4.4: a successful unsafe request invalidates what is stored for its URI."""
    return method in _UNSAFE_METHODS and status < 400


# --- keys -------------------------------------------------------------------------------------


def base_key(method: str, scheme: str, host: str, port: int, path: str, query: str) -> str:
    """`host|port|path METHOD scheme query-hash`: purgeable by host and path prefix."""
    digest = _digest(query) if query else "-"
    return f"{host.lower()}|{port}|{path} {method} {scheme} {digest}"


def variant_key(base: str, vary: Sequence[str], headers: Headers) -> str:
    """The key of the variant that `headers` select, for an answer that Varies on `vary`."""
    material = "\n".join(f"{name}:{_normalize(headers.get(name))}" for name in vary)
    return f"{base} {_digest(material)}"


def key_target(key: str) -> tuple[str, str]:
    """(host, path) of a key made by `base_key` or `variant_key`."""
    host, _port, rest = key.split("|", 2)
    return host, rest.split(" ", 1)[0]


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=10).hexdigest()


def _normalize(value: str | None) -> str:
    """RFC 9111 section 4.1: whitespace and how repeated fields were combined do not matter."""
    if value is None:
        return "\x00"
    return ",".join(" ".join(part.split()) for part in value.split(","))


# --- storing ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Freshness:
    """How long a stored answer serves, computed once when it is stored."""

    stored_at: float  # when the answer arrived (response_time)
    initial_age: float  # its age then (RFC 9111 section 4.2.3, corrected_initial_age)
    lifetime: float  # fresh while age < lifetime
    stale_while_revalidate: float = 0.0  # then stale, served while one refresh runs
    stale_if_error: float = 0.0  # then stale, served only when the origin fails
    shared_auth: bool = False  # may also answer requests that carry Authorization

    def age(self, now: float) -> float:
        return self.initial_age + max(0.0, now - self.stored_at)

    @property
    def retention(self) -> float:
        """Seconds from storing until no window can serve it any more."""
        windows = max(self.stale_while_revalidate, self.stale_if_error)
        return self.lifetime + windows - self.initial_age

    def state(self, now: float) -> str:
        """`fresh`, `stale-while-revalidate`, `stale-if-error` or `expired`."""
        age = self.age(now)
        if age < self.lifetime:
            return "fresh"
        if age < self.lifetime + self.stale_while_revalidate:
            return "stale-while-revalidate"
        if age < self.lifetime + self.stale_if_error:
            return "stale-if-error"
        return "expired"


@dataclass(frozen=True, slots=True)
class StorePlan:
    freshness: Freshness
    vary: tuple[str, ...]  # lower-case request header names the answer varies on
    headers: list[tuple[str, str]]  # what a hit sends (before Age and X-Cache-Status)


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and the answer it got, as the policy needs them."""

    method: str
    url: str
    request_headers: Headers
    status: int
    response_headers: Sequence[tuple[str, str]]
    body_size: int
    request_time: float
    response_time: float


def plan_storage(exchange: Exchange, rule: Rule | None, defaults: Defaults) -> StorePlan | str:
    """How to store this answer, or why it must not be stored."""
    if parse_cache_control(exchange.request_headers.get("cache-control")).no_store:
        return "request no-store"
    if exchange.body_size > defaults.max_body_bytes:
        return "body larger than cache.max_body_bytes"
    response = Headers(exchange.response_headers)
    kept = _storable_header_names(exchange, response)
    if kept is None:
        return "not storable (RFC 9111 section 3)"
    cc = parse_cache_control(response.get("cache-control"))
    if cc.no_cache is True:
        return "no-cache (MockBox does not revalidate)"
    vary = tuple(name.strip().lower() for name in response.get("vary", "").split(",") if name)
    if "*" in vary:
        return "Vary: *"
    explicit = cc.s_maxage is not None or cc.public
    if "set-cookie" in response and not explicit:
        return "Set-Cookie without public or s-maxage"
    freshness = _freshness(exchange, response, cc, rule, defaults)
    if freshness.retention <= 0:
        return "no freshness lifetime (no max-age, s-maxage, Expires or TTL rule)"
    return StorePlan(freshness, vary, _stored_headers(exchange, kept))


def _storable_header_names(exchange: Exchange, response: Headers) -> frozenset[str] | None:
    """hishel's verdict: None when RFC 9111 forbids storing, else the header names to keep."""
    request = hishel.Request(
        exchange.method, exchange.url, hishel.Headers(_header_lists(exchange.request_headers))
    )
    state = hishel.CacheMiss(request=request, options=_HISHEL_OPTIONS).next(
        hishel.Response(exchange.status, hishel.Headers(_header_lists(response)))
    )
    if not isinstance(state, hishel.StoreAndUse):
        return None
    return frozenset(name.lower() for name in state.response.headers) - _NOT_STORED


def _header_lists(headers: Headers) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in headers.fields():
        out.setdefault(name.lower(), []).append(value)
    return out


def _freshness(
    exchange: Exchange, response: Headers, cc: CacheControl, rule: Rule | None, defaults: Defaults
) -> Freshness:
    lifetime = _explicit_lifetime(response, cc)
    if lifetime is None:
        lifetime = _first(rule.ttl if rule else None, defaults.ttl)
    if cc.must_revalidate or cc.proxy_revalidate:
        swr = sie = 0  # RFC 9111 section 5.2.2.2: never serve it stale
    else:
        swr = _first(
            cc.stale_while_revalidate,
            rule.stale_while_revalidate if rule else None,
            defaults.stale_while_revalidate,
        )
        sie = _first(
            cc.stale_if_error, rule.stale_if_error if rule else None, defaults.stale_if_error
        )
    return Freshness(
        stored_at=exchange.response_time,
        initial_age=_initial_age(exchange, response),
        lifetime=float(lifetime),
        stale_while_revalidate=float(swr),
        stale_if_error=float(sie),
        shared_auth=bool(cc.public or cc.s_maxage is not None or cc.must_revalidate),
    )


def _first(*values: int | None) -> int:
    return next((v for v in values if v is not None), 0)


def _explicit_lifetime(response: Headers, cc: CacheControl) -> float | None:
    """RFC 9111 section 4.2.1, for a shared cache: s-maxage, max-age, then Expires - Date."""
    if cc.s_maxage is not None:
        return float(cc.s_maxage)
    if cc.max_age is not None:
        return float(cc.max_age)
    if "expires" in response:
        expires = _http_date(response["expires"])
        if expires is None:
            return 0.0  # an invalid Expires means already expired
        date = _http_date(response.get("date", "")) or time.time()
        return max(0.0, expires - date)
    return None


def _initial_age(exchange: Exchange, response: Headers) -> float:
    """RFC 9111 section 4.2.3: corrected_initial_age."""
    date = _http_date(response.get("date", ""))
    apparent_age = max(0.0, exchange.response_time - date) if date is not None else 0.0
    try:
        age_value = max(0.0, float(int(response.get("age", "0").split(",")[0])))
    except ValueError:
        age_value = 0.0
    response_delay = max(0.0, exchange.response_time - exchange.request_time)
    return max(apparent_age, age_value + response_delay)


def _http_date(text: str) -> float | None:
    try:
        return parsedate_to_datetime(text).timestamp() if text else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _stored_headers(exchange: Exchange, kept: frozenset[str]) -> list[tuple[str, str]]:
    headers = [(k, v) for k, v in exchange.response_headers if k.lower() in kept]
    names = {k.lower() for k, _ in headers}
    if "date" not in names:  # RFC 9110 section 6.6.1: a cache adds the Date it received it
        headers.append(("Date", formatdate(exchange.response_time, usegmt=True)))
    if exchange.method != "HEAD" and "content-length" not in names:
        # The body is sent whole from the cache: its length replaces chunked encoding.
        headers.append(("Content-Length", str(exchange.body_size)))
    return headers


# --- CDN headers --------------------------------------------------------------------------------


def surrogate_tags(host: str, mock_id: str | None = None) -> list[str]:
    """Purge handles for a CDN: everything from MockBox, one host, one mock."""
    tags = ["mockbox", f"host:{host.lower()}"]
    if mock_id is not None:
        tags.append(mock_tag(mock_id))
    return tags


def mock_tag(mock_id: str) -> str:
    """The purge handle of one mock's answers (no spaces, as Surrogate-Key and Cache-Tag need)."""
    return f"mock:{quote(mock_id, safe='/#:{}*.-_@')}"


def with_cdn(
    headers: Iterable[tuple[str, str]], cdn_ttl: int, tags: Sequence[str]
) -> list[tuple[str, str]]:
    """`headers` with `s-maxage=cdn_ttl` in Cache-Control plus Surrogate-Key and Cache-Tag
    (Fastly/Varnish and Cloudflare spellings), so a CDN keeps the answer and can purge it by
    host or mock."""
    out: list[tuple[str, str]] = []
    directives: list[str] = []
    for name, value in headers:
        lower = name.lower()
        if lower == "cache-control":
            directives += [d.strip() for d in value.split(",") if d.strip()]
        elif lower not in ("surrogate-key", "cache-tag"):
            out.append((name, value))
    directives = [d for d in directives if not d.lower().startswith("s-maxage")]
    directives.append(f"s-maxage={cdn_ttl}")
    out.append(("Cache-Control", ", ".join(directives)))
    out.append(("Surrogate-Key", " ".join(tags)))
    out.append(("Cache-Tag", ",".join(tags)))
    return out


@dataclass(frozen=True, slots=True)
class MockCaching:
    """A mock's `cache:` setting: `ttl` for clients (max-age), `cdn_ttl` for a CDN (s-maxage);
    `cache: false` forbids storing its answers anywhere (no-store)."""

    store: bool = True
    ttl: int | None = None
    cdn_ttl: int | None = None

    @classmethod
    def parse(cls, raw: Any, default_cdn_ttl: int) -> MockCaching | None:
        """None when the mock has no `cache:` (its answers are left alone)."""
        if raw is None:
            return None
        if raw is False:
            return cls(store=False)
        if raw is True:
            return cls(cdn_ttl=default_cdn_ttl)
        return cls(ttl=raw.get("ttl"), cdn_ttl=raw.get("cdn_ttl"))

    def headers(
        self, headers: list[tuple[str, str]], host: str, mock_id: str
    ) -> list[tuple[str, str]]:
        """The answer's headers with this setting applied. A Cache-Control the mock sets is
        kept (only `s-maxage` is set in it for `cdn_ttl`)."""
        has_cc = any(name.lower() == "cache-control" for name, _ in headers)
        if not self.store:
            return headers if has_cc else [*headers, ("Cache-Control", "no-store")]
        if not has_cc and (self.ttl is not None or self.cdn_ttl is not None):
            headers = [*headers, ("Cache-Control", f"public, max-age={self.ttl or 0}")]
        if self.cdn_ttl is None:
            return headers
        return with_cdn(headers, self.cdn_ttl, surrogate_tags(host, mock_id))
