"""Single flight: concurrent misses for one key make one upstream (or LLM) call.

Within a process the first request for a key leads and the others await its future; across
processes the leader also holds a lock in the shared state backend (with a timeout, so a
crashed leader cannot block anyone for long) and the other processes poll until it is
released. Waiting is always bounded; whoever waited looks the key up again afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from .state import StateBackend, StateError, StateLock

logger = logging.getLogger(__name__)

_POLL_SECONDS = 0.02


class _NoLock:
    """The lock of a lead that could not reach the backend: nothing to release."""

    async def acquire(self) -> bool:
        return True

    async def release(self) -> None:
        pass

    async def locked(self) -> bool:
        return False


_NO_LOCK = _NoLock()


class Lead:
    """Held by the one request that fetches a key; `release` wakes everyone who waits."""

    def __init__(
        self, coalescer: Coalescer, key: str, future: asyncio.Future[None], lock: StateLock
    ) -> None:
        self._coalescer, self.key, self._future, self._lock = coalescer, key, future, lock
        self._expiry = asyncio.get_running_loop().call_later(
            coalescer.timeout, self._coalescer.finish, key, future
        )

    async def release(self) -> None:
        self._expiry.cancel()
        self._coalescer.finish(self.key, self._future)
        lock, self._lock = self._lock, _NO_LOCK
        try:
            await lock.release()
        except StateError as e:  # it expires on its own
            logger.debug(f"mockbox: could not release lock {self.key!r}: {e}")


class Coalescer:
    def __init__(
        self,
        backend: Callable[[], StateBackend],
        prefix: str,
        timeout: float,
        on_wait: Callable[[], None],
    ) -> None:
        self._backend, self.prefix, self.timeout, self._on_wait = backend, prefix, timeout, on_wait
        self._inflight: dict[str, asyncio.Future[None]] = {}

    async def lead(self, key: str) -> Lead | None:
        """Lead the fetch of `key`, or wait (bounded) for whoever leads it and return None."""
        future = self._inflight.get(key)
        if future is not None:
            self._on_wait()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(future), self.timeout)
            return None
        future, lock = await self._claim(key)
        if lock is not None:
            return Lead(self, key, future, lock)
        self._on_wait()  # another process leads
        try:
            await asyncio.wait_for(self._released(key), self.timeout)
        except TimeoutError:
            pass
        finally:
            self.finish(key, future)
        return None

    async def try_lead(self, key: str) -> Lead | None:
        """Lead the fetch of `key` if nobody does, here or in another process; never waits."""
        if key in self._inflight:
            return None
        future, lock = await self._claim(key)
        if lock is None:
            self.finish(key, future)
            return None
        return Lead(self, key, future, lock)

    async def _claim(self, key: str) -> tuple[asyncio.Future[None], StateLock | None]:
        """Register as this process's leader, then take the shared lock (None: held elsewhere).
        Without a reachable backend, the lead is this process's alone."""
        future = self._inflight[key] = asyncio.get_running_loop().create_future()
        lock = self._backend().lock(self.prefix + key, self.timeout)
        try:
            return future, (lock if await lock.acquire() else None)
        except StateError as e:
            logger.debug(f"mockbox: single-flight lock unavailable: {e}")
            return future, _NO_LOCK

    async def _released(self, key: str) -> None:
        lock = self._backend().lock(self.prefix + key, self.timeout)
        try:
            while await lock.locked():
                await asyncio.sleep(_POLL_SECONDS)
        except StateError:
            return

    def finish(self, key: str, future: asyncio.Future[None]) -> None:
        if self._inflight.get(key) is future:
            del self._inflight[key]
        if not future.done():
            future.set_result(None)
