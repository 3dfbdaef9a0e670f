"""Usage accounting for AI synthesis: tokens, estimated cost, latency, outcomes; and budgets."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from .stores import StateStore

OUTCOMES = ("ok", "repaired", "invalid", "timeout", "error", "breaker_open", "no_knowledge")


@dataclass(slots=True)
class _Totals:
    requests: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class UsageBook:
    """Counts every provider call in Prometheus and keeps totals for /api/ai/usage."""

    def __init__(self, registry: CollectorRegistry, prices: dict[str, dict[str, float]]) -> None:
        self.prices = prices
        self.tokens = Counter(
            "mockbox_ai_tokens_total",
            "Tokens sent to (in) and received from (out) AI providers.",
            ["provider", "model", "direction"],
            registry=registry,
        )
        self.cost = Counter(
            "mockbox_ai_cost_usd_total",
            "Estimated cost of AI calls in US dollars, from the ai.prices table.",
            ["provider", "model"],
            registry=registry,
        )
        self.calls = Counter(
            "mockbox_ai_requests_total",
            "AI synthesis attempts by outcome.",
            ["provider", "model", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "mockbox_ai_latency_seconds",
            "Time to get a checked answer from an AI provider.",
            ["provider"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60),
            registry=registry,
        )
        self._totals: dict[tuple[str, str], _Totals] = defaultdict(_Totals)
        self.since = datetime.now(UTC)

    def price(self, model: str, tokens_in: int, tokens_out: int) -> float:
        """Estimated dollars, with prices per million tokens; unknown models cost 0."""
        p = self.prices.get(model) or {}
        return (tokens_in * p.get("input", 0.0) + tokens_out * p.get("output", 0.0)) / 1e6

    def record(
        self,
        provider: str,
        model: str,
        outcome: str,
        tokens_in: int,
        tokens_out: int,
        latency: float,
    ) -> float:
        cost = self.price(model, tokens_in, tokens_out)
        self.tokens.labels(provider, model, "in").inc(tokens_in)
        self.tokens.labels(provider, model, "out").inc(tokens_out)
        self.cost.labels(provider, model).inc(cost)
        self.calls.labels(provider, model, outcome).inc()
        self.latency.labels(provider).observe(latency)
        t = self._totals[(provider, model)]
        t.requests += 1
        t.tokens_in += tokens_in
        t.tokens_out += tokens_out
        t.cost_usd += cost
        t.latency_s += latency
        t.outcomes[outcome] += 1
        return cost

    def snapshot(self) -> dict[str, Any]:
        rows: list[dict[str, Any]] = []
        for (provider, model), t in sorted(self._totals.items()):
            rows.append(
                {
                    "provider": provider,
                    "model": model,
                    "requests": t.requests,
                    "tokens_in": t.tokens_in,
                    "tokens_out": t.tokens_out,
                    "cost_usd": round(t.cost_usd, 6),
                    "mean_latency_s": round(t.latency_s / t.requests, 4) if t.requests else 0,
                    "outcomes": dict(t.outcomes),
                }
            )
        return {
            "since": self.since.isoformat(),
            "by_model": rows,
            "total": {
                "requests": sum(r["requests"] for r in rows),
                "tokens_in": sum(r["tokens_in"] for r in rows),
                "tokens_out": sum(r["tokens_out"] for r in rows),
                "cost_usd": round(sum(r["cost_usd"] for r in rows), 6),
            },
        }


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    client_tokens: int = 0  # per client and day; 0: no limit
    total_tokens: int = 0
    client_cost: float = 0.0
    total_cost: float = 0.0


class Budget:
    """Daily token and cost budgets, per client and in total (UTC days)."""

    def __init__(self, limits: BudgetLimits, store: StateStore) -> None:
        self.limits, self.store = limits, store

    @staticmethod
    def _day() -> str:
        return datetime.now(UTC).strftime("%Y-%m-%d")

    @staticmethod
    def seconds_to_midnight() -> int:
        now = datetime.now(UTC)
        return 86400 - (now.hour * 3600 + now.minute * 60 + now.second)

    async def exceeded(self, client: str) -> str | None:
        """Which budget is spent for `client` today, or None."""
        day = self._day()
        checks = (
            (self.limits.client_tokens, f"ai:budget:{day}:tokens:{client}", "your daily AI tokens"),
            (
                self.limits.total_tokens,
                f"ai:budget:{day}:tokens",
                "the daily AI tokens of all clients",
            ),
            (self.limits.client_cost, f"ai:budget:{day}:cost:{client}", "your daily AI cost"),
            (self.limits.total_cost, f"ai:budget:{day}:cost", "the daily AI cost of all clients"),
        )
        for limit, key, what in checks:
            if limit and await self.store.number(key) >= limit:
                return what
        return None

    async def spend(self, client: str, tokens: int, cost: float) -> None:
        day, ttl = self._day(), 2 * 86400
        if tokens:
            await self.store.incr(f"ai:budget:{day}:tokens:{client}", tokens, ttl)
            await self.store.incr(f"ai:budget:{day}:tokens", tokens, ttl)
        if cost:
            await self.store.incr(f"ai:budget:{day}:cost:{client}", cost, ttl)
            await self.store.incr(f"ai:budget:{day}:cost", cost, ttl)
