"""The MockBox addons in hook order, shared by `mockbox run` and stock mitmproxy (-s)."""

from __future__ import annotations

from typing import Any

from .admin import AdminServer
from .metrics import Metrics
from .mocks import MockServer
from .probe import Probe
from .provenance import Provenance
from .settings import Settings
from .synthesize import Synthesize


def build() -> list[Any]:
    """Request hooks run in list order; the first addon that answers ends the chain."""
    settings = Settings()
    metrics = Metrics()
    mocks = MockServer(settings, metrics)
    synthesize = Synthesize(settings, metrics, mocks)
    return [
        settings,
        Probe(settings, mocks),
        mocks,
        synthesize,
        Provenance(settings),
        metrics,
        AdminServer(settings, metrics, mocks, synthesize),
    ]
