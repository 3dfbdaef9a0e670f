"""The bounds on matching one request, checked by the matching code as it goes.

Matching starts on the event loop, where it may run for a short slice only: past it (or before
a step known to be large) it raises OffLoop and the caller runs it again on a worker thread.
Wherever it runs, past the deadline it raises MatchTimeout. Body matchers look at bodies up to
`max_body_bytes`; a larger body fails them (the 404 explanation says so).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


class OffLoop(Exception):
    """Matching is too long for the event loop: run it again on a worker thread."""


class MatchTimeout(Exception):
    """Matching one request took longer than its time bound."""


DEFAULT_MAX_BODY_BYTES = 512 << 10  # as config/mockbox.yaml's matching.max_body_bytes
# Bodies up to this size are matched on the event loop (JSON parse ~0.4 ms, RE2 well under).
INLINE_BODY_BYTES = 16 << 10


@dataclass(slots=True)
class Work:
    """The bounds of one request's matching; `tick()` in every loop that the request sizes."""

    deadline: float = math.inf  # time.monotonic() past which matching gives up
    loop_until: float | None = None  # set while on the event loop: the slice it may take
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    _ticks: int = 0

    @classmethod
    def on_loop(cls, timeout: float, slice_seconds: float, max_body_bytes: int) -> Work:
        now = time.monotonic()
        return cls(now + timeout, now + slice_seconds, max_body_bytes)

    def off_loop(self) -> Work:
        """The same bounds, for a worker thread."""
        return Work(self.deadline, None, self.max_body_bytes)

    def tick(self) -> None:
        """One unit of work done. Every 64 units: the clock is read (about 50 ns), and on a
        worker thread the GIL is offered to the event loop, which otherwise waits a switch
        interval for it each time it wakes, many times per request."""
        self._ticks += 1
        if not self._ticks & 63:
            self._check()
            if self.loop_until is None:
                time.sleep(0)

    def _check(self) -> None:
        now = time.monotonic()
        if self.loop_until is not None and now > self.loop_until:
            raise OffLoop
        if now > self.deadline:
            raise MatchTimeout

    def body(self, size: int) -> bool:
        """Whether body matchers may look at a body of `size` bytes; a large one is never
        looked at on the event loop (OffLoop)."""
        if size > self.max_body_bytes:
            return False
        if size > INLINE_BODY_BYTES and self.loop_until is not None:
            raise OffLoop
        return True
