"""The MockBox addons in hook order, shared by `mockbox run` and stock mitmproxy (-s)."""

from __future__ import annotations

from typing import Any

from .admin import AdminServer
from .aiapi import ai_routes
from .cache import ResponseCache
from .cacheapi import cache_routes
from .cdn import MockCdnHeaders
from .cdnpurge import CdnPurge
from .editor.routes import editor_routes
from .limitsapi import limits_routes
from .metrics import Metrics
from .mocks import MockServer
from .probe import Probe
from .provenance import Provenance
from .ratelimit import RateLimiter
from .recorder import Recorder
from .selfguard import SelfGuard
from .sequenceapi import sequence_routes
from .settings import Settings
from .state import SharedState
from .synthesize import Synthesize
from .traffic import Traffic


def build() -> list[Any]:
    """Request hooks run in list order; the first addon that answers ends the chain."""
    settings = Settings()
    metrics = Metrics()
    state = SharedState(settings)
    mocks = MockServer(settings, metrics)
    ratelimit = RateLimiter(settings, metrics, mocks)
    synthesize = Synthesize(settings, metrics, mocks, state)
    cache = ResponseCache(settings, metrics, state, mocks)
    cdn_purge = CdnPurge(settings, metrics, mocks)
    admin = AdminServer(settings, metrics, mocks, state)
    admin.routes += cache_routes(admin, cache)
    admin.routes += ai_routes(admin, synthesize)
    admin.routes += sequence_routes(admin, mocks)
    admin.routes += editor_routes(admin, synthesize, ratelimit)
    admin.routes += limits_routes(admin, ratelimit)
    return [
        settings,
        state,
        Probe(settings, mocks),  # health probes first: never limited, recorded or mocked
        Recorder(settings),  # before every answering addon: while recording, none may answer
        ratelimit,  # before the answers it guards: a refused request goes no further
        mocks,
        cache,
        synthesize,
        MockCdnHeaders(settings, mocks),
        Provenance(settings),
        metrics,
        Traffic(settings),
        cdn_purge,
        admin,
        SelfGuard(admin),  # last: refuses what no addon answered if it would reach MockBox
    ]
