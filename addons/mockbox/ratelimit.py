"""The RateLimiter addon: first in the request chain, it counts each request against its
tier's limits (`ai` for requests that would reach AI synthesis, `public` for the rest), for its
client and for the client's address, and answers 429 once either is over; every response of a
limited tier carries the limit headers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from typing import Any

from mitmproxy import exceptions, http
from mitmproxy.addonmanager import Loader

from .core.quota import Quota
from .core.ratelimit import TIERS, RateLimitConfigError, RateLimitPolicy, describe
from .core.redaction import redact_url
from .core.request import Headers
from .flows import BACKGROUND, RECORDING, answer_json, request_view
from .limiter import RETRY_INTERVAL, Limiter, RateLimitMetrics, StorageUnavailable
from .metrics import Metrics
from .mocks import MockServer
from .settings import OptionalStr, Settings
from .violations import Violation, ViolationLog
from .windows import MemoryWindows, RedisWindows

logger = logging.getLogger(__name__)

QUOTA = "mockbox.quota"  # flow.metadata key: the Quota this flow was counted in
WATCHED = {"mockbox_config", "mockbox_redis", "mockbox_rate_limit_ai", "mockbox_rate_limit_public"}


class RateLimiter:
    def __init__(self, settings: Settings, metrics: Metrics, mocks: MockServer) -> None:
        self.settings, self.mocks = settings, mocks
        self.metrics = RateLimitMetrics(metrics.registry)
        self.policy: RateLimitPolicy | None = None
        self.limiter: Limiter | None = None
        self.violations = ViolationLog(0)
        self._storage_key: tuple[str, float, str] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "mockbox_rate_limit_ai",
            OptionalStr,
            None,
            'Rate limit of the ai tier, like "10/minute;200/day" or "none" '
            "(MOCKBOX_RATE_LIMIT_AI; default 10/minute).",
        )
        loader.add_option(
            "mockbox_rate_limit_public",
            OptionalStr,
            None,
            'Rate limit of the public tier, like "100/minute" or "none" '
            "(MOCKBOX_RATE_LIMIT_PUBLIC; default 100/minute).",
        )

    def configure(self, updated: set[str]) -> None:
        if not updated & WATCHED:
            return
        section = dict(self.settings.config.get("rate_limit"))
        for tier in TIERS:  # a mockbox_rate_limit_* option wins over the configuration
            limit = self.settings.value(f"mockbox_rate_limit_{tier}", "rate_limit", tier, "limit")
            section[tier] = {**section[tier], "limit": limit}
        try:
            policy = RateLimitPolicy.from_config(section)
        except RateLimitConfigError as e:
            raise exceptions.OptionsError(str(e)) from e
        url = self.settings.redis_url
        key = (url, policy.redis_timeout, policy.on_redis_error)
        if key != self._storage_key or self.limiter is None:
            self._replace_storage(url, policy)
            self._storage_key = key
        elif policy.violations_kept != self.violations.keep:
            self.violations = ViolationLog(policy.violations_kept, self.violations.redis)
        self.policy = policy

    def _replace_storage(self, url: str, policy: RateLimitPolicy) -> None:
        try:
            windows = RedisWindows(url, policy.redis_timeout) if url else MemoryWindows()
        except ValueError as e:
            raise exceptions.OptionsError(str(e)) from e
        old = self.limiter
        where = redact_url(url) if url else "memory"
        self.limiter = Limiter(windows, policy.on_redis_error, self.metrics, where)
        redis = windows.client if isinstance(windows, RedisWindows) else None
        self.violations = ViolationLog(policy.violations_kept, redis)
        if old is not None:
            self._close_later(old)

    def _close_later(self, limiter: Limiter) -> None:
        try:
            task = asyncio.get_running_loop().create_task(limiter.close())
        except RuntimeError:  # no loop yet: nothing was connected
            return
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def running(self) -> None:
        policy, limiter = self.policy, self.limiter
        if limiter is None or policy is None or not policy.enabled:
            logger.info("mockbox: rate limiting is off")
            return
        tiers = ", ".join(f"{name} {t['limit']}" for name, t in policy.describe()["tiers"].items())
        logger.info(f"mockbox: rate limits per client: {tiers} (counted in {limiter.where})")
        await limiter.probe()

    async def done(self) -> None:
        await self.violations.close()
        if self.limiter is not None:
            await self.limiter.close()

    async def request(self, flow: http.HTTPFlow) -> None:
        policy, limiter = self.policy, self.limiter
        if flow.response or flow.error or not flow.live or not (policy and policy.enabled):
            return
        if flow.metadata.get(BACKGROUND) or flow.metadata.get(RECORDING):
            return  # MockBox's own request (no client to limit), or recording: it goes upstream
        assert limiter is not None  # made with the policy
        match = await self.mocks.match(flow)
        view = request_view(flow)
        chosen = policy.select(view, match.mock if match else None, self.mocks.unmatched_to_ai)
        if chosen is None:
            return
        client = policy.identifier.identify(view.client, view.headers)
        if policy.exempt.covers(client):
            return
        tallies = policy.tallies(chosen, client)
        try:
            states = await limiter.hit(tallies)
        except StorageUnavailable:
            retry = math.ceil(RETRY_INTERVAL)  # when Redis is tried again
            answer_json(
                flow,
                503,
                {
                    "error": "RATE_LIMIT_UNAVAILABLE",
                    "message": "Rate limits cannot be checked because Redis is unreachable, "
                    "and rate_limit.on_redis_error is closed. Try again shortly.",
                    "retry_after": retry,
                },
                "ratelimit",
            )
            assert flow.response is not None
            flow.response.headers["Retry-After"] = str(retry)
            return
        if not states or not flow.live:
            return  # not counted (Redis unreachable, on_redis_error open), or the client left
        quota = Quota.of(tallies, states, time.time())
        flow.metadata[QUOTA] = quota
        if not quota.allowed:
            self._refuse(flow, quota, shared=limiter.down_since is None)

    async def check_tier(self, tier: str, address: str, headers: Headers) -> dict[str, Any] | None:
        """Count a call that is not a proxied request (the editor's AI buttons) in `tier`; the
        429 body when the client is over the limit, else None. Same identity rules as requests."""
        policy, limiter = self.policy, self.limiter
        if not (policy and policy.enabled) or limiter is None:
            return None
        chosen = policy.tier_policy(tier)
        client = policy.identifier.identify(address, headers)
        if chosen is None or policy.exempt.covers(client):
            return None
        tallies = policy.tallies(chosen, client)
        try:
            states = await limiter.hit(tallies)
        except StorageUnavailable:
            return None  # an outage must not lock people out of the editor
        if not states:
            return None
        quota = Quota.of(tallies, states, time.time())
        if quota.allowed:
            return None
        self.metrics.limited.labels(tier).inc()
        return quota.refusal()

    def _refuse(self, flow: http.HTTPFlow, quota: Quota, shared: bool) -> None:
        answer_json(flow, 429, quota.refusal(), "ratelimit")
        view = request_view(flow)
        identity = quota.binding.tally.identity  # the key's, or the address's when that refused
        violation = Violation(
            at=quota.at,
            tier=quota.policy.tier,
            identity=identity,
            method=view.method,
            host=view.host,
            path=view.path,
            limit=describe(quota.binding.item),
            retry_after=quota.retry_after,
            region=self.settings.region,
        )
        self.metrics.limited.labels(violation.tier).inc()
        self.violations.record(violation, share=shared)
        logger.info(
            "mockbox: rate_limited "
            + " ".join(
                f"{k}={json.dumps(v)}"
                for k, v in (
                    ("tier", violation.tier),
                    ("identity", identity),
                    ("method", violation.method),
                    ("host", violation.host),
                    ("path", violation.path),
                    ("limit", violation.limit),
                    ("policy", quota.binding.name),
                    ("retry_after", violation.retry_after),
                )
            )
        )

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """Also called for answers set in the request hook, and before a streamed body."""
        quota: Quota | None = flow.metadata.get(QUOTA)
        if quota is not None and flow.response is not None:
            # One pass over the fields (not one per header): ours replace any of the same name.
            ours = tuple((name.encode(), value.encode()) for name, value in quota.headers())
            names = {name.lower() for name, _ in ours}
            headers = flow.response.headers
            headers.fields = (
                *(f for f in headers.fields if f[0].lower() not in names),
                *ours,
            )

    async def snapshot(self, recent: int, top: int) -> dict[str, Any]:
        """What /api/limits shows: the configuration, Redis's state and recent violations."""
        policy, limiter = self.policy, self.limiter
        state: dict[str, Any] = {"backend": "memory"}
        if limiter is not None and limiter.shared:
            state = {
                "backend": "redis",
                "redis": limiter.where,
                "reachable": limiter.down_since is None,
                "down_since": limiter.down_since,
            }
        return {
            **(policy.describe() if policy else {}),
            "storage": state,
            "violations": await self.violations.snapshot(recent, top),
        }
