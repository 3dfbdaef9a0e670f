"""The MockBox addons in hook order, shared by `mockbox run` and stock mitmproxy (-s)."""

from __future__ import annotations

from typing import Any

from .admin import AdminServer
from .metrics import Metrics
from .mocks import MockServer
from .provenance import Provenance
from .settings import Settings
from .synthesize import Synthesize
from .traffic import Traffic


def build() -> list[Any]:
    """Request hooks run in list order; the first addon that answers ends the chain."""
    settings = Settings()
    metrics = Metrics()
    mocks = MockServer(settings, metrics)
    synthesize = Synthesize(settings, metrics, mocks)
    return [
        settings,
        mocks,
        synthesize,
        Provenance(),
        metrics,
        Traffic(settings),
        AdminServer(settings, metrics, mocks, synthesize),
    ]
