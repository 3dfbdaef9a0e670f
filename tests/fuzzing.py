"""Shared set-up for the property/fuzz tests (issue 9): a bounded Hypothesis profile, JSON
strategies, and a wall-clock guard so a regression that hangs fails instead of stalling CI.

Profiles: `mockbox` (default, bounded for CI) and `mockbox-deep` (HYPOTHESIS_PROFILE=mockbox-deep,
for a longer local hunt). The example database lives in .hypothesis/ (git-ignored), so a
failure found once is replayed first on the next run.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

settings.register_profile(
    "mockbox",
    max_examples=200,
    deadline=None,  # file I/O and a shared 2-core machine make per-example timings noisy
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)
settings.register_profile("mockbox-deep", parent=settings.get_profile("mockbox"), max_examples=5000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "mockbox"))

# JSON values as a model, an upstream or a mock author could write them.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)


class TookTooLong(Exception):
    """Raised inside the code under test when it runs past its time bound."""


@contextmanager
def time_bound(seconds: float) -> Iterator[None]:
    """Fail (rather than hang) when the body runs longer than `seconds` of wall-clock time."""

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise TookTooLong(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
