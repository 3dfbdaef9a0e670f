"""The pure rate-limit core: configuration, tier and override selection, client identity,
header fields, and `rate_limit:` in mock files."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from mockbox.core.clientid import ClientIdentifier, Exemptions, parse_address, parse_network
from mockbox.core.config import load_config
from mockbox.core.library import MockLibrary
from mockbox.core.mockfile import load_mock_file
from mockbox.core.quota import Quota, WindowState
from mockbox.core.ratelimit import RateLimitConfigError, RateLimitPolicy, Tally, parse_limits
from mockbox.core.request import Headers, RequestView
from mockbox.core.templating import TemplateEngine


def section(**changes: Any) -> dict[str, Any]:
    """The shipped `rate_limit:` section with some keys changed."""
    data: dict[str, Any] = load_config(None, {}).get("rate_limit")
    data.update(changes)
    return data


def view(path: str = "/", host: str = "api.test", headers: tuple[tuple[str, str], ...] = ()) -> Any:
    return RequestView("GET", "http", host, 80, path, headers=Headers(headers), client="10.9.8.7")


MOCKS = """\
mocks:
  - name: plain
    request: {path: /plain}
    response: {body: p}
  - name: own
    request: {path: /own}
    response: {body: o}
    rate_limit: 2/minute
  - name: strategy only
    request: {path: /strategy}
    response: {body: s}
    rate_limit: {strategy: fixed-window, name: fixed}
"""


def library(tmp_path: Path) -> MockLibrary:
    (tmp_path / "m.yaml").write_text(MOCKS)
    lib = MockLibrary(tmp_path, TemplateEngine())
    assert not lib.refresh().problems
    return lib


def test_shipped_defaults_match_the_design() -> None:
    policy = RateLimitPolicy.from_config(section())
    assert policy.enabled
    assert policy.describe()["tiers"] == {
        "ai": {
            "limit": "10 per minute",
            "strategy": "moving-window",
            "per_address": "10 per minute",
        },
        "public": {
            "limit": "100 per minute",
            "strategy": "moving-window",
            "per_address": "100 per minute",
        },
    }
    env = {"MOCKBOX_RATE_LIMIT_AI": "10/minute;200/day", "MOCKBOX_RATE_LIMIT_PUBLIC": "none"}
    policy = RateLimitPolicy.from_config(load_config(None, env).get("rate_limit"))
    assert policy.describe()["tiers"]["ai"]["limit"] == "10 per minute; 200 per day"
    assert policy.select(view(), None, unmatched_to_ai=False) is None  # public: none


def test_limits_notation() -> None:
    assert [(i.amount, i.get_expiry()) for i in parse_limits("3/2 seconds", "x")] == [(3, 2)]
    assert [i.amount for i in parse_limits("10/minute;200/day", "x")] == [10, 200]
    assert parse_limits("None", "x") == ()
    for bad, message in [
        ("10/fortnight", "is not a rate limit"),
        ("0/minute", "at least 1 request"),
        ("", "expected a limit"),
        (10, "expected a limit"),
    ]:
        with pytest.raises(RateLimitConfigError, match=message):
            parse_limits(bad, "rate_limit.public.limit")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"public": {"limit": "ten/minute", "strategy": "moving-window"}},
            "rate_limit.public.limit",
        ),
        ({"ai": {"limit": "1/second", "strategy": "leaky-bucket"}}, "rate_limit.ai.strategy"),
        ({"on_redis_error": "maybe"}, "rate_limit.on_redis_error: expected one of open"),
        ({"overrides": [{"limit": "1/second"}]}, "overrides[0]: an override needs a host"),
        ({"overrides": [{"path": "/a"}]}, "overrides[0]: give a limit, a strategy or a tier"),
        ({"overrides": [{"path": "/a/{x*}/b", "tier": "ai"}]}, "overrides[0].path: catch-all"),
        ({"overrides": [{"host": "bad host", "tier": "ai"}]}, "overrides[0].host"),
        ({"overrides": [{"path": "/a", "tier": "gold"}]}, "overrides[0].tier: expected one of"),
        ({"overrides": [{"path": "/a", "burst": 3}]}, "unknown key 'burst'"),
        ({"exempt": ["10.0.0.0/33"]}, "rate_limit.exempt[0]: '10.0.0.0/33' is not an IP"),
        ({"exempt": ["key:ABC"]}, "exempt[0]: 'key:ABC': a key identity is"),
        ({"redis_timeout": 0}, "redis_timeout must be above 0"),
        (
            {"ai": {"limit": "1/second", "strategy": "moving-window", "per_address": "lots"}},
            "rate_limit.ai.per_address: 'lots' is not a rate limit",
        ),
    ],
)
def test_configuration_errors_name_the_key(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(RateLimitConfigError, match=re.escape(message)):
        RateLimitPolicy.from_config(section(**changes))


def test_identity_configuration_errors_name_the_key() -> None:
    identity = {**section()["identity"], "trusted_proxies": ["cdn"]}
    with pytest.raises(RateLimitConfigError, match=r"identity\.trusted_proxies\[0\]: 'cdn'"):
        RateLimitPolicy.from_config(section(identity=identity))
    identity = {**section()["identity"], "forwarded_header": "X-Real-IP"}
    with pytest.raises(RateLimitConfigError, match=r"identity\.forwarded_header: expected one of"):
        RateLimitPolicy.from_config(section(identity=identity))


def test_tier_selection_is_the_seam_for_ai_synthesis(tmp_path: Path) -> None:
    lib = library(tmp_path)
    policy = RateLimitPolicy.from_config(section())
    plain = lib.index.match(view("/plain"))
    assert plain is not None
    # A mock answers: public, whatever happens to unmatched requests.
    assert policy.select(view("/plain"), plain.mock, unmatched_to_ai=True).tier == "public"  # type: ignore[union-attr]
    # No mock: public while unmatched requests get a 404 or go upstream, ai once they reach AI.
    assert policy.select(view("/nothing"), None, unmatched_to_ai=False).tier == "public"  # type: ignore[union-attr]
    ai = policy.select(view("/nothing"), None, unmatched_to_ai=True)
    assert ai is not None
    assert (ai.tier, ai.scope, [i.amount for i in ai.items]) == ("ai", "ai", [10])


def test_mock_rules_come_before_overrides_and_own_counters(tmp_path: Path) -> None:
    lib = library(tmp_path)
    overrides = [
        {"path": "/own", "limit": "50/minute"},  # the mock's own rule wins over this
        {"host": "*.llm.test", "tier": "ai"},  # only a tier: shares the ai tier's counter
        {"host": "api.test", "path": "/reports/{rest*}", "limit": "1/minute", "name": "reports"},
    ]
    policy = RateLimitPolicy.from_config(section(overrides=overrides))

    def chosen(path: str, host: str = "api.test") -> Any:
        match = lib.index.match(view(path, host))
        return policy.select(view(path, host), match.mock if match else None, False)

    own = chosen("/own")
    assert (own.tier, own.scope, own.label, own.items[0].amount) == (
        "public",
        "public|mock:m.yaml#own",
        "public|mock:m.yaml#own",
        2,
    )
    fixed = chosen("/strategy")
    assert (fixed.strategy, fixed.label, fixed.items[0].amount) == ("fixed-window", "fixed", 100)
    llm = chosen("/v1/chat", host="eu.llm.test")
    assert (llm.tier, llm.scope, llm.items[0].amount) == ("ai", "ai", 10)
    reports = chosen("/reports/2026/q1")
    assert (reports.scope, reports.label) == ("public|override:api.test/reports/{rest*}", "reports")
    assert chosen("/reports/2026", host="other.test").scope == "public"
    assert chosen("/plain") is chosen("/elsewhere")  # one policy object per counter


def test_a_key_never_buys_a_fresh_budget(tmp_path: Path) -> None:
    """Keys are not checked: a request with one also counts for its address, in the counter
    the address uses without a key (the tier's `per_address` when set; `none`: keys alone)."""
    lib = library(tmp_path)
    plain = ClientIdentifier().identify("10.9.8.7", Headers())
    keyed = ClientIdentifier().identify("10.9.8.7", Headers([("X-API-Key", "made-up")]))
    assert (plain.keyed, keyed.keyed, keyed.home) == (False, True, "ip:10.9.8.7")

    def tallies(policy: RateLimitPolicy, path: str, client: Any) -> list[tuple[str, str, str]]:
        match = lib.index.match(view(path))
        chosen = policy.select(view(path), match.mock if match else None, False)
        assert chosen is not None
        return [
            (t.identity, t.policy.scope, t.policy.label) for t in policy.tallies(chosen, client)
        ]

    default = RateLimitPolicy.from_config(section())
    assert tallies(default, "/plain", plain) == [("ip:10.9.8.7", "public", "public")]
    # The address's own counter (scope and limits), named apart in the headers.
    assert tallies(default, "/plain", keyed) == [
        (keyed.identity, "public", "public"),
        ("ip:10.9.8.7", "public", "public/address"),
    ]
    # A mock's own limit holds for the address as well.
    own = "public|mock:m.yaml#own"
    assert tallies(default, "/own", plain) == [("ip:10.9.8.7", own, own)]
    assert tallies(default, "/own", keyed) == [
        (keyed.identity, own, own),
        ("ip:10.9.8.7", own, f"{own}/address"),
    ]

    def tier(per_address: str) -> RateLimitPolicy:
        public = {**section()["public"], "per_address": per_address}
        return RateLimitPolicy.from_config(section(public=public))

    # A ceiling of its own: every request of the tier counts in it, with or without a key.
    wider = tier("300/minute")
    assert tallies(wider, "/plain", plain) == [
        ("ip:10.9.8.7", "public", "public"),
        ("ip:10.9.8.7", "public|address", "public/address"),
    ]
    assert tallies(wider, "/plain", keyed)[1] == tallies(wider, "/plain", plain)[1]
    assert wider.describe()["tiers"]["public"]["per_address"] == "300 per minute"
    assert tallies(tier("100/minute"), "/plain", plain) == tallies(default, "/plain", plain)
    # none: each key counts alone, as before this ceiling existed.
    assert tallies(tier("none"), "/plain", keyed) == [(keyed.identity, "public", "public")]


def test_identity_api_key_then_bearer_then_address() -> None:
    ident = ClientIdentifier()
    digest = hashlib.sha256(b"s3cret").hexdigest()[:16]
    key = ident.identify("10.0.0.1", Headers([("X-API-Key", "s3cret")]))
    assert key.identity == f"key:{digest}"
    bearer = ident.identify("10.0.0.1", Headers([("Authorization", "Bearer s3cret")]))
    assert bearer.identity == f"key:{digest}"
    assert ident.identify("10.0.0.1", Headers([("Authorization", "Basic xyz")])).identity == (
        "ip:10.0.0.1"
    )
    assert ident.identify("::ffff:10.0.0.1", Headers()).identity == "ip:10.0.0.1"
    no_keys = ClientIdentifier(api_key_header="", bearer=False)
    assert no_keys.identify("10.0.0.1", Headers([("X-API-Key", "k")])).identity == "ip:10.0.0.1"


def test_forwarding_headers_are_believed_only_from_trusted_proxies() -> None:
    cdn = [parse_network("10.0.0.0/8", "t")]
    xff = ClientIdentifier(trusted_proxies=cdn)

    def who(peer: str, *headers: tuple[str, str], ident: ClientIdentifier = xff) -> str:
        return ident.identify(peer, Headers(headers)).identity

    # From an untrusted client the header is ignored: it cannot pick its identity.
    assert who("198.51.100.9", ("X-Forwarded-For", "203.0.113.5")) == "ip:198.51.100.9"
    # From the CDN: the right-most address that is not itself the CDN.
    assert who("10.1.1.1", ("X-Forwarded-For", "203.0.113.5")) == "ip:203.0.113.5"
    spoofed = ("X-Forwarded-For", "6.6.6.6, 203.0.113.5, 10.2.2.2")
    assert who("10.1.1.1", spoofed) == "ip:203.0.113.5"
    assert who("10.1.1.1", ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.5")) == (
        "ip:203.0.113.5"  # repeated fields are one list, in order
    )
    assert who("10.1.1.1", ("X-Forwarded-For", "garbage, 203.0.113.5")) == "ip:203.0.113.5"
    assert who("10.1.1.1", ("X-Forwarded-For", "203.0.113.5, unknown")) == "ip:10.1.1.1"
    assert who("10.1.1.1") == "ip:10.1.1.1"
    forwarded = ClientIdentifier(trusted_proxies=cdn, forwarded_header="forwarded")
    header = ("Forwarded", 'for=6.6.6.6, for="[2001:db8::7]:4711";proto=https, for=10.3.3.3')
    assert who("10.1.1.1", header, ident=forwarded) == "ip:2001:db8::7"
    # The other header is not believed: the CDN does not write it, so a client could have.
    assert who("10.1.1.1", ("X-Forwarded-For", "6.6.6.6"), ident=forwarded) == "ip:10.1.1.1"


def test_addresses_as_proxies_write_them() -> None:
    assert str(parse_address("203.0.113.5:443")) == "203.0.113.5"
    assert str(parse_address("[2001:db8::1]:80")) == "2001:db8::1"
    assert str(parse_address('"2001:db8::1"')) == "2001:db8::1"
    assert parse_address("_hidden") is None


def test_exemptions() -> None:
    digest = hashlib.sha256(b"partner").hexdigest()[:16]
    exempt = Exemptions.parse(["10.0.0.0/8", "2001:db8::1", f"key:{digest}"], "exempt")
    ident = ClientIdentifier()
    assert exempt.covers(ident.identify("10.4.4.4", Headers()))
    assert exempt.covers(ident.identify("2001:db8::1", Headers()))
    assert exempt.covers(ident.identify("192.0.2.1", Headers([("X-API-Key", "partner")])))
    assert not exempt.covers(ident.identify("192.0.2.1", Headers([("X-API-Key", "other")])))


def test_header_fields_follow_the_ietf_draft() -> None:
    env = {"MOCKBOX_RATE_LIMIT_PUBLIC": "10/minute;200/day"}
    policy = RateLimitPolicy.from_config(load_config(None, env).get("rate_limit"))
    chosen = policy.select(view(), None, False)
    assert chosen is not None
    at = 1_000_000.0
    mine = (Tally(chosen, "ip:192.0.2.1"),)
    quota = Quota.of(mine, [WindowState(True, 3, at + 12.5), WindowState(True, 150, at + 3600)], at)
    assert quota.allowed
    assert dict(quota.headers()) == {
        "X-RateLimit-Limit": "10",
        "X-RateLimit-Remaining": "3",
        "X-RateLimit-Reset": "1000013",
        "RateLimit-Policy": '"public-60s";q=10;w=60, "public-86400s";q=200;w=86400',
        "RateLimit": '"public-60s";r=3;t=13, "public-86400s";r=150;t=3600',
    }
    refused = Quota.of(
        mine, [WindowState(True, 0, at + 20), WindowState(False, 0, at + 7200.2)], at
    )
    fields = dict(refused.headers())
    assert (fields["X-RateLimit-Limit"], fields["Retry-After"]) == ("200", "7201")
    assert refused.refusal() == {
        "error": "PUBLIC_API_RATE_LIMIT_EXCEEDED",
        "message": "Public API rate limit exceeded: 200 per day. Try again in 7201 seconds.",
        "retry_after": 7201,
    }


def test_a_keyed_request_shows_its_address_windows_too() -> None:
    policy = RateLimitPolicy.from_config(load_config(None, {}).get("rate_limit"))
    chosen = policy.select(view(), None, False)
    assert chosen is not None
    client = policy.identifier.identify("10.9.8.7", Headers([("X-API-Key", "k")]))
    tallies = policy.tallies(chosen, client)
    at = 1_000_000.0
    # The key has plenty left; its address is spent (by other keys): the address refuses.
    quota = Quota.of(tallies, [WindowState(True, 99, at + 60), WindowState(False, 0, at + 30)], at)
    fields = dict(quota.headers())
    assert fields["RateLimit-Policy"] == '"public";q=100;w=60, "public/address";q=100;w=60'
    assert fields["RateLimit"] == '"public";r=99;t=60, "public/address";r=0;t=30'
    assert (fields["X-RateLimit-Remaining"], fields["Retry-After"]) == ("0", "30")
    assert quota.binding.tally.identity == "ip:10.9.8.7"
    assert quota.refusal()["message"] == (
        "Public API rate limit exceeded: 100 per minute per address. Try again in 30 seconds."
    )


def test_policy_names_are_valid_structured_field_strings(tmp_path: Path) -> None:
    policy = RateLimitPolicy.from_config(
        section(overrides=[{"path": "/x", "limit": "1/second", "name": 'Ünïcode "quoted" \\'}])
    )
    chosen = policy.select(view("/x"), None, False)
    assert chosen is not None
    quota = Quota.of((Tally(chosen, "ip:192.0.2.1"),), [WindowState(True, 0, 5.0)], 4.0)
    fields = dict(quota.headers())
    assert fields["RateLimit-Policy"] == '"?n?code \\"quoted\\" \\\\";q=1;w=1'


@pytest.mark.parametrize(
    ("rate_limit", "line", "message"),
    [
        ('"10/fortnight"', 5, "rate_limit: '10/fortnight' is not a rate limit"),
        ("{limit: 5/minute, burst: 2}", 5, "unknown key 'burst'"),
        ("{tier: gold}", 5, "rate_limit.tier: 'gold' is not one of ['ai', 'public']"),
        ("{}", 5, "rate_limit: {} should be non-empty"),
    ],
)
def test_mock_file_rate_limit_problems_name_file_and_line(
    tmp_path: Path, rate_limit: str, line: int, message: str
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "mocks:\n  - name: r\n    request: {path: /r}\n    response: {body: r}\n"
        f"    rate_limit: {rate_limit}\n"
    )
    loaded = load_mock_file(path, tmp_path, TemplateEngine())
    assert not loaded.mocks
    assert [p.line for p in loaded.problems] == [line]
    assert message in loaded.problems[0].message
