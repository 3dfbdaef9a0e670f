"""Per-mock call counters for `responses:` sequences (first call, second call, ..., then the
last answer repeats). Counters live in one MockServer, in memory: each instance counts its own."""

from __future__ import annotations

from collections.abc import Iterable

from .model import Mock, ResponseSpec


class SequenceCounters:
    def __init__(self) -> None:
        # Keyed by the Mock object: a reloaded mock is a new object and so starts again at 1.
        self._calls: dict[Mock, int] = {}

    def pick(self, mock: Mock) -> ResponseSpec:
        """The answer for this call of `mock`, counting the call."""
        if not mock.sequence:
            return mock.response
        n = self._calls.get(mock, 0)
        self._calls[mock] = n + 1
        return mock.sequence[min(n, len(mock.sequence) - 1)]

    def retain(self, served: Iterable[Mock]) -> None:
        """Forget counters of mocks no longer served (removed or reloaded)."""
        keep = set(served)
        self._calls = {m: n for m, n in self._calls.items() if m in keep}

    def reset(self, mock_id: str = "") -> int:
        """Start sequences over: all of them, or those of the mock with this id (or name).
        Returns how many counters were reset."""
        hit = [m for m in self._calls if not mock_id or mock_id in (m.id, m.name)]
        for mock in hit:
            del self._calls[mock]
        return len(hit)

    def calls(self) -> dict[str, int]:
        """Calls counted so far, by mock id."""
        return {m.id: n for m, n in self._calls.items()}
