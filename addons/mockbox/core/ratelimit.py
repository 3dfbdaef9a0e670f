"""Rate-limit policy: the tiers, their limits, the overrides, and which counter a request uses.

A request is in the `ai` tier when it would reach AI synthesis, else in `public` (mock and
upstream traffic). Its limits are, first that applies: its mock's `rate_limit`, the first
matching override in the configuration, the tier's own. An override or mock rule with its own
`limit` or `strategy` counts in a counter of its own; one that only names a tier shares that
tier's counter.

Keys are not checked, so a key must not buy a fresh budget: a request that names one also
counts in the counter its address uses (`tallies`, below). In a tier that is the tier's own
counter, so the address gets the tier's limit in all; with `per_address` set, a ceiling of its
own that every request of the tier counts in. Under a mock's or override's own limit, the
address gets that limit. Pure: `limits` only parses "10/minute;200/day" here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import limits
from limits import RateLimitItem

from .clientid import Client, ClientIdentifier, Exemptions, IdentityConfigError, parse_network
from .model import HostPattern
from .pathtemplate import PathTemplate, PathTemplateError
from .request import RequestView

if TYPE_CHECKING:
    from .model import Mock

TIERS = ("ai", "public")
STRATEGIES = ("moving-window", "sliding-window-counter", "fixed-window")
ON_REDIS_ERROR = ("open", "closed", "local")
NO_LIMIT = "none"
RULE_KEYS = ("limit", "strategy", "tier", "name")
_HOST = re.compile(r"(\*\.)?[A-Za-z0-9.-]+(:[0-9]{1,5})?")  # as in mock files


class RateLimitConfigError(ValueError):
    pass


def parse_limits(text: object, where: str) -> tuple[RateLimitItem, ...]:
    """`"10/minute;200/day"` → its limits (all must hold); `"none"` → no limit."""
    if not isinstance(text, str) or not text.strip():
        raise RateLimitConfigError(
            f'{where}: expected a limit like "10/minute" or "10/minute;200/day", or "none"'
        )
    if text.strip().lower() == NO_LIMIT:
        return ()
    try:
        items = limits.parse_many(text)
    except ValueError:
        raise RateLimitConfigError(
            f'{where}: {text!r} is not a rate limit; write "N/unit" or "N/M units" '
            '(second, minute, hour, day, month, year), several joined by ";", or "none"'
        ) from None
    for item in items:
        if item.amount < 1:
            raise RateLimitConfigError(
                f"{where}: {text!r}: a limit allows at least 1 request (use none for no limit)"
            )
    return tuple(items)


def describe(item: RateLimitItem) -> str:
    """`10 per minute`, `3 per 2 seconds`: how a limit reads in messages and logs."""
    unit = item.GRANULARITY.name
    return (
        f"{item.amount} per {unit}"
        if item.multiples == 1
        else f"{item.amount} per {item.multiples} {unit}s"
    )


def _tier(raw: Mapping[str, Any], where: str) -> Tier:
    """A tier's section: `limit`, `strategy` and `per_address` (empty: the same as `limit`)."""
    items = parse_limits(raw["limit"], f"{where}.limit")
    ceiling = raw.get("per_address", "")
    per_address = None if ceiling in ("", None) else parse_limits(ceiling, f"{where}.per_address")
    return Tier(
        items,
        _choice(raw["strategy"], STRATEGIES, f"{where}.strategy"),
        None if per_address == items else per_address,  # the same: the same counter
    )


def _choice(value: object, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        raise RateLimitConfigError(f"{where}: expected one of {', '.join(choices)}, got {value!r}")
    return str(value)


@dataclass(frozen=True, slots=True)
class LimitRule:
    """A mock's `rate_limit`, or the limit part of an override. None fields: the tier's."""

    tier: str | None = None
    items: tuple[RateLimitItem, ...] | None = None
    strategy: str | None = None
    name: str | None = None

    @property
    def own_counter(self) -> bool:
        return self.items is not None or self.strategy is not None


def parse_rule(raw: object, where: str) -> LimitRule:
    """`"5/minute"`, or a mapping with any of `limit`, `strategy`, `tier`, `name`."""
    if isinstance(raw, str):
        return LimitRule(items=parse_limits(raw, where))
    if not isinstance(raw, Mapping) or not raw:
        raise RateLimitConfigError(
            f'{where}: expected a limit ("5/minute") or a mapping of {", ".join(RULE_KEYS)}'
        )
    unknown = [k for k in raw if k not in RULE_KEYS]
    if unknown:
        raise RateLimitConfigError(
            f"{where}: unknown key {unknown[0]!r} (expected one of: {', '.join(RULE_KEYS)})"
        )
    name = raw.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise RateLimitConfigError(f"{where}.name: expected a non-empty text")
    return LimitRule(
        tier=_choice(raw["tier"], TIERS, f"{where}.tier") if "tier" in raw else None,
        items=parse_limits(raw["limit"], f"{where}.limit") if "limit" in raw else None,
        strategy=(
            _choice(raw["strategy"], STRATEGIES, f"{where}.strategy") if "strategy" in raw else None
        ),
        name=name,
    )


@dataclass(frozen=True, slots=True)
class Override:
    """Limits for the requests of some host and/or path (mock path syntax: {id}, {rest*})."""

    host: HostPattern | None
    path: PathTemplate | None
    rule: LimitRule

    def applies(self, view: RequestView) -> bool:
        if self.host is not None and not self.host.test(view.host, view.port):
            return False
        return self.path is None or self.path.match(view.segments) is not None

    @property
    def scope(self) -> str:
        return f"override:{self.host or '*'}{self.path.text if self.path else ''}"


def parse_override(raw: object, where: str) -> Override:
    if not isinstance(raw, Mapping):
        raise RateLimitConfigError(f"{where}: expected a mapping with host and/or path")
    raw = dict(raw)
    host, path = raw.pop("host", None), raw.pop("path", None)
    if host is None and path is None:
        raise RateLimitConfigError(f"{where}: an override needs a host, a path or both")
    if host is not None and (not isinstance(host, str) or not _HOST.fullmatch(host)):
        raise RateLimitConfigError(f"{where}.host: expected a host like api.example.com")
    try:
        template = PathTemplate.parse(str(path)) if path is not None else None
    except PathTemplateError as e:
        raise RateLimitConfigError(f"{where}.path: {e}") from None
    if not raw:
        raise RateLimitConfigError(f"{where}: give a limit, a strategy or a tier")
    return Override(HostPattern.parse(host) if host else None, template, parse_rule(raw, where))


@dataclass(frozen=True, slots=True)
class Policy:
    """The limits one request counts against, and the counter (`scope`) they count in."""

    tier: str
    scope: str
    label: str  # names the policy in RateLimit-Policy fields: the rule's name, else the scope
    items: tuple[RateLimitItem, ...]
    strategy: str
    per_address: bool = False  # counted for the client's address, whatever key it sent

    def window_names(self) -> tuple[str, ...]:
        if len(self.items) == 1:
            return (self.label,)
        return tuple(f"{self.label}-{item.get_expiry()}s" for item in self.items)


@lru_cache(maxsize=1024)  # one per policy, made once
def _at_address(policy: Policy) -> Policy:
    """The same counter and limits, counted for the address (named apart in headers)."""
    return replace(policy, label=f"{policy.label}/address", per_address=True)


@dataclass(frozen=True, slots=True)
class Tally:
    """One count a request makes: in a policy's counter (its limits), for one identity."""

    policy: Policy
    identity: str


@dataclass(frozen=True, slots=True)
class Tier:
    items: tuple[RateLimitItem, ...]
    strategy: str
    per_address: tuple[RateLimitItem, ...] | None = None  # None: the same as `items`


class RateLimitPolicy:
    """The `rate_limit:` configuration, checked, and the choice of policy for a request."""

    def __init__(
        self,
        enabled: bool,
        tiers: Mapping[str, Tier],
        overrides: tuple[Override, ...] = (),
        identifier: ClientIdentifier | None = None,
        exempt: Exemptions | None = None,
        on_redis_error: str = "local",
        redis_timeout: float = 0.5,
        violations_kept: int = 1000,
    ) -> None:
        self.enabled = enabled
        self.tiers = dict(tiers)
        self.overrides = overrides
        self.identifier = identifier or ClientIdentifier()
        self.exempt = exempt or Exemptions()
        self.on_redis_error = on_redis_error
        self.redis_timeout = redis_timeout
        self.violations_kept = violations_kept
        self._policies: dict[tuple[str, LimitRule, str], Policy | None] = {}
        self._ceilings = {
            name: Policy(
                name, f"{name}|address", f"{name}/address", t.per_address, t.strategy, True
            )
            for name, t in self.tiers.items()
            if t.per_address  # None: the tier's own counter; (): no ceiling
        }

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> RateLimitPolicy:
        """Check the `rate_limit:` section; every problem names its key."""
        try:
            return cls._from_config(section)
        except IdentityConfigError as e:
            raise RateLimitConfigError(f"rate_limit.{e}") from None

    @classmethod
    def _from_config(cls, section: Mapping[str, Any]) -> RateLimitPolicy:
        tiers = {name: _tier(section[name], f"rate_limit.{name}") for name in TIERS}
        overrides = section["overrides"]
        if not isinstance(overrides, list):
            raise RateLimitConfigError("rate_limit.overrides: expected a list")
        identity = section["identity"]
        trusted = identity["trusted_proxies"]
        if not isinstance(trusted, list):
            raise RateLimitConfigError("rate_limit.identity.trusted_proxies: expected a list")
        identifier = ClientIdentifier(
            api_key_header=str(identity["api_key_header"] or ""),
            bearer=bool(identity["bearer"]),
            trusted_proxies=[
                parse_network(str(n), f"identity.trusted_proxies[{i}]")
                for i, n in enumerate(trusted)
            ],
            forwarded_header=str(identity["forwarded_header"]),
        )
        timeout = float(section["redis_timeout"])
        kept = int(section["violations_kept"])
        if timeout <= 0 or kept < 0:
            raise RateLimitConfigError(
                "rate_limit: redis_timeout must be above 0 and violations_kept not below 0"
            )
        return cls(
            enabled=bool(section["enabled"]),
            tiers=tiers,
            overrides=tuple(
                parse_override(o, f"rate_limit.overrides[{i}]") for i, o in enumerate(overrides)
            ),
            identifier=identifier,
            exempt=Exemptions.parse(section["exempt"], "exempt"),
            on_redis_error=_choice(
                section["on_redis_error"], ON_REDIS_ERROR, "rate_limit.on_redis_error"
            ),
            redis_timeout=timeout,
            violations_kept=kept,
        )

    def select(self, view: RequestView, mock: Mock | None, unmatched_to_ai: bool) -> Policy | None:
        """The policy for a request (None: not limited). `mock` is the mock that answers it;
        with none, the request reaches AI synthesis when `unmatched_to_ai`."""
        tier = "ai" if mock is None and unmatched_to_ai else "public"
        if mock is not None and mock.rate_limit is not None:
            return self._policy(tier, mock.rate_limit, f"mock:{mock.id}")
        for override in self.overrides:
            if override.applies(view):
                return self._policy(tier, override.rule, override.scope)
        return self._policy(tier, LimitRule(), tier)

    def tallies(self, policy: Policy, client: Client) -> tuple[Tally, ...]:
        """The tallies a request of `client` under `policy` counts in, in the order they are
        tried: its own identity's, then its address's, so that a key it made up buys nothing
        (a refusal by the first spends nothing of the second)."""
        own = Tally(policy, client.identity)
        if policy.scope == policy.tier and self.tiers[policy.tier].per_address is not None:
            ceiling = self._ceilings.get(policy.tier)  # every request of the tier counts in it
            return (own,) if ceiling is None else (own, Tally(ceiling, client.home))
        if not client.keyed:
            return (own,)  # its own counter is its address's
        return (own, Tally(_at_address(policy), client.home))

    def tier_policy(self, tier: str) -> Policy | None:
        """A tier's own policy, for calls that are not proxied requests (the editor's AI)."""
        return self._policy(tier, LimitRule(), tier)

    def _policy(self, tier: str, rule: LimitRule, scope: str) -> Policy | None:
        key = (tier, rule, scope if rule.own_counter else "")
        if key not in self._policies:
            self._policies[key] = self._build(rule.tier or tier, rule, scope)
        return self._policies[key]

    def _build(self, tier: str, rule: LimitRule, scope: str) -> Policy | None:
        base = self.tiers[tier]
        items = base.items if rule.items is None else rule.items
        if not items:
            return None
        if not rule.own_counter:
            return Policy(tier, tier, rule.name or tier, items, base.strategy)
        scope = f"{tier}|{scope}"
        return Policy(tier, scope, rule.name or scope, items, rule.strategy or base.strategy)

    def describe(self) -> dict[str, Any]:
        """The configuration as the admin API shows it."""

        def limits_text(items: tuple[RateLimitItem, ...] | None) -> str | None:
            return None if items is None else "; ".join(describe(i) for i in items) or NO_LIMIT

        return {
            "enabled": self.enabled,
            "tiers": {
                name: {
                    "limit": limits_text(t.items),
                    "strategy": t.strategy,
                    "per_address": limits_text(t.items if t.per_address is None else t.per_address),
                }
                for name, t in self.tiers.items()
            },
            "overrides": [
                {
                    "host": str(o.host) if o.host else None,
                    "path": o.path.text if o.path else None,
                    "tier": o.rule.tier,
                    "limit": limits_text(o.rule.items),
                    "strategy": o.rule.strategy,
                    "name": o.rule.name,
                }
                for o in self.overrides
            ],
            "on_redis_error": self.on_redis_error,
        }
