"""Prometheus metrics: one registry per MockBox instance, recorded once per answered flow."""

from __future__ import annotations

import time

from mitmproxy import http
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from .flows import BACKGROUND, SOURCE

# `*_created` series only add noise for a proxy's counters.
disable_created_metrics()

SOURCES = ("mock", "cache", "ai", "upstream", "ratelimit")
# Mock answers take well under a millisecond; upstream and AI answers take up to seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """Holds the collectors; also an addon that records each flow's source and latency."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "mockbox_requests_total",
            "Answers sent, by where they came from.",
            ["source"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mockbox_request_duration_seconds",
            "Time from the request's first byte to the answer, by source.",
            ["source"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.mocks_loaded = Gauge(
            "mockbox_mocks_loaded", "Mocks currently served.", registry=self.registry
        )
        self.reload_errors = Counter(
            "mockbox_reload_errors_total",
            "Mock files that failed to load (their last good version keeps serving).",
            registry=self.registry,
        )
        self.upstream_errors = Counter(
            "mockbox_upstream_errors_total",
            "Requests forwarded upstream that failed (connection refused, timeout, ...).",
            registry=self.registry,
        )
        # Label children resolved once: the hot path must not pay for label lookups.
        self._by_source = {s: (self.requests.labels(s), self.latency.labels(s)) for s in SOURCES}

    def response(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(BACKGROUND):  # no client waits for it (a cache refresh)
            return
        source = flow.metadata.get(SOURCE, "upstream")
        counter, histogram = self._by_source.get(source) or self._by_source["upstream"]
        counter.inc()
        histogram.observe(max(0.0, time.time() - flow.request.timestamp_start))

    def error(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(SOURCE) is None:
            self.upstream_errors.inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
