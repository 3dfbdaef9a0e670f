"""Answers health probes on the proxy port itself: `GET /__mockbox/healthz`.

A CDN or load balancer in front of MockBox (reverse mode) can only probe the port it sends
traffic to; the admin port's /healthz is not reachable for it. This answer comes before rate
limiting and mocks, so a probe is never limited, mocked or forwarded.
"""

from __future__ import annotations

from mitmproxy import http

from .flows import answer_json
from .mocks import MockServer
from .settings import Settings

PROBE_PATH = "/__mockbox/healthz"


class Probe:
    def __init__(self, settings: Settings, mocks: MockServer) -> None:
        self.settings, self.mocks = settings, mocks

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.request.path != PROBE_PATH:
            return
        if flow.request.method not in ("GET", "HEAD"):
            return
        library = self.mocks.library
        answer_json(
            flow,
            200,
            {
                "status": "ok",
                "region": self.settings.region,
                "mocks": library.digest[:16] if library else None,
            },
            "mock",
        )
        assert flow.response is not None
        flow.response.headers["Cache-Control"] = "no-store"
