"""Admin API of the rate limiter: `GET /api/limits[?recent=100&top=10]`."""

from __future__ import annotations

from .admin import AdminServer, ApiHandler, Route
from .ratelimit import RateLimiter


def limits_routes(admin: AdminServer, limiter: RateLimiter) -> list[Route]:
    return [(r"/api/limits", LimitsHandler, {"admin": admin, "limiter": limiter})]


class LimitsHandler(ApiHandler):
    """Rate limits: configuration, Redis's state, recent violations, top limited clients."""

    limiter: RateLimiter

    def initialize(self, admin: AdminServer, limiter: RateLimiter) -> None:  # type: ignore[override]
        super().initialize(admin)
        self.limiter = limiter

    async def get(self) -> None:
        recent = self.query_int("recent", 100)
        if recent is None:
            return
        top = self.query_int("top", 10)
        if top is None:
            return
        self.write_json(await self.limiter.snapshot(recent, top))

    def query_int(self, name: str, default: int, high: int = 100_000) -> int | None:
        """A whole-number query argument in 0..high; None (after answering 400) otherwise."""
        text = self.get_query_argument(name, str(default))
        if not text.isdigit() or int(text) > high:
            self.bad_request(f"{name} must be a whole number 0..{high}")
            return None
        return int(text)
