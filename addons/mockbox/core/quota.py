"""What a rate-limit check found, and how it is told to the client.

Header fields: `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (Unix time,
in seconds, when the remaining count next grows) for the window closest to refusing, and
`RateLimit-Policy` / `RateLimit` for every window, in the syntax of
draft-ietf-httpapi-ratelimit-headers-11 (`"name";q=100;w=60` and `"name";r=42;t=17`). A
request counted against its key and its address has the windows of both (the address's named
`<policy>/address`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from limits import RateLimitItem

from .ratelimit import Policy, Tally, describe

ERRORS = {"ai": "AI_RATE_LIMIT_EXCEEDED", "public": "PUBLIC_API_RATE_LIMIT_EXCEEDED"}
TIER_TITLES = {"ai": "AI", "public": "Public API"}


@dataclass(frozen=True, slots=True)
class WindowState:
    """One limit's state right after counting a request, as the storage reports it."""

    allowed: bool  # the request fitted in this limit
    remaining: int
    reset_at: float  # Unix time when `remaining` next grows


@dataclass(frozen=True, slots=True)
class Window:
    name: str
    item: RateLimitItem
    state: WindowState
    tally: Tally


@dataclass(frozen=True, slots=True)
class Quota:
    tallies: tuple[Tally, ...]  # the client's own first, then its address's
    windows: tuple[Window, ...]
    at: float  # when the request was counted

    @classmethod
    def of(cls, tallies: tuple[Tally, ...], states: list[WindowState], at: float) -> Quota:
        """`states`: the windows of every tally's policy in turn, as the storage gave them."""
        slots = [
            (name, item, c)
            for c in tallies
            for name, item in zip(c.policy.window_names(), c.policy.items, strict=True)
        ]
        windows = tuple(Window(n, i, s, c) for (n, i, c), s in zip(slots, states, strict=True))
        return cls(tallies, windows, at)

    @property
    def policy(self) -> Policy:
        """The policy the request was chosen for (its tier, its rule)."""
        return self.tallies[0].policy

    @property
    def allowed(self) -> bool:
        return all(w.state.allowed for w in self.windows)

    @property
    def binding(self) -> Window:
        """The refusing window that frees last, else the one with the fewest requests left."""
        refused = [w for w in self.windows if not w.state.allowed]
        if refused:
            return max(refused, key=lambda w: w.state.reset_at)
        return min(self.windows, key=lambda w: (w.state.remaining, -w.state.reset_at))

    @property
    def retry_after(self) -> int:
        """Whole seconds until the request would be allowed (at least 1)."""
        return max(1, self._seconds_left(self.binding))

    def _seconds_left(self, window: Window) -> int:
        return max(0, math.ceil(window.state.reset_at - self.at))

    def headers(self) -> list[tuple[str, str]]:
        binding = self.binding
        policy_field, names = _advertised(tuple(c.policy for c in self.tallies))
        fields = [
            ("X-RateLimit-Limit", str(binding.item.amount)),
            ("X-RateLimit-Remaining", str(binding.state.remaining)),
            ("X-RateLimit-Reset", str(math.ceil(binding.state.reset_at))),
            ("RateLimit-Policy", policy_field),
            (
                "RateLimit",
                ", ".join(
                    f"{name};r={w.state.remaining};t={self._seconds_left(w)}"
                    for name, w in zip(names, self.windows, strict=True)
                ),
            ),
        ]
        if not self.allowed:
            fields.append(("Retry-After", str(self.retry_after)))
        return fields

    def refusal(self) -> dict[str, Any]:
        """The 429 body."""
        tier, binding = self.policy.tier, self.binding
        seconds = self.retry_after
        where = " per address" if binding.tally.policy.per_address else ""
        return {
            "error": ERRORS[tier],
            "message": (
                f"{TIER_TITLES[tier]} rate limit exceeded: {describe(binding.item)}{where}. "
                f"Try again in {seconds} second{'s' if seconds != 1 else ''}."
            ),
            "retry_after": seconds,
        }


@lru_cache(maxsize=1024)
def _advertised(policies: tuple[Policy, ...]) -> tuple[str, tuple[str, ...]]:
    """The policies' `RateLimit-Policy` value and their limits' names, as Structured Field
    Strings (the same for every request, so made once)."""
    names = tuple(_sf_string(name) for p in policies for name in p.window_names())
    items = [item for p in policies for item in p.items]
    field = ", ".join(
        f"{name};q={item.amount};w={item.get_expiry()}"
        for name, item in zip(names, items, strict=True)
    )
    return field, names


def _sf_string(text: str) -> str:
    """A Structured Field String (RFC 9651): printable ASCII, with `"` and `\\` escaped."""
    safe = "".join(c if " " <= c <= "~" else "?" for c in text)
    return '"' + safe.replace("\\", "\\\\").replace('"', '\\"') + '"'
