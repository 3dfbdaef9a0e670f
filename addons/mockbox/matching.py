"""Runs the matching of one request within its bounds (core/work.py), off the event loop when
it gets long.

Matching starts on the event loop, so a plain request costs what it always did. When it runs
past a 2 ms slice, or reaches a body over 16 KiB, it starts again on a dedicated worker
thread, where `matching.timeout` bounds it. Matching is pure, so running it again from
the start is safe. Too many requests waiting for a worker, or one past its timeout, give
MatchingGaveUp, which the caller answers with a JSON error.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .core.work import DEFAULT_MAX_BODY_BYTES, MatchTimeout, OffLoop, Work

LOOP_SLICE = 0.002  # seconds matching may hold the event loop before it moves to a worker
WORKERS = 1  # pure Python holds the GIL: more threads would only compete with the loop
QUEUE = 16  # requests matched or waiting on the workers; more are refused at once
GRACE = 0.05  # seconds past the deadline before the waiting client is answered anyway
# A thread that wants the GIL waits this long before the holder must hand it over (Python's
# default: 5 ms). The event loop takes it back many times per request, so while a worker
# matches a large body, 5 ms each time would add up to a stall of other clients.
SWITCH_INTERVAL = 0.0005


class MatchingGaveUp(Exception):
    """Matching this request was stopped; `error` and `message` are for the JSON answer."""

    def __init__(self, error: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.error, self.message, self.retry_after = error, message, retry_after


class MatchRunner:
    def __init__(self, timeout: float = 1.0, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.timeout, self.max_body_bytes = timeout, max_body_bytes
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="mockbox-match")
        self._slots = threading.BoundedSemaphore(QUEUE)
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))

    async def run[T](self, job: Callable[[Work], T]) -> T:
        """`job(work)`: on the event loop if it fits the slice, else on a worker thread."""
        work = Work.on_loop(self.timeout, LOOP_SLICE, self.max_body_bytes)
        try:
            return job(work)
        except OffLoop:
            pass
        except MatchTimeout:
            raise self._timed_out() from None
        if not self._slots.acquire(blocking=False):
            raise MatchingGaveUp(
                "MATCH_BUSY",
                f"{QUEUE} large requests are already being matched against the mocks; "
                "try again shortly.",
                retry_after=1,
            )
        future = self._pool.submit(job, work.off_loop())
        future.add_done_callback(self._release)  # when it ends, even after the client left
        try:
            remaining = work.deadline - time.monotonic()
            return await asyncio.wait_for(asyncio.wrap_future(future), remaining + GRACE)
        except (MatchTimeout, TimeoutError):
            raise self._timed_out() from None

    def _release(self, _future: Future[Any]) -> None:
        self._slots.release()

    def _timed_out(self) -> MatchingGaveUp:
        return MatchingGaveUp(
            "MATCH_TIMEOUT",
            f"Matching this request against the mocks took longer than {self.timeout} s "
            "(matching.timeout), so it was stopped.",
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
