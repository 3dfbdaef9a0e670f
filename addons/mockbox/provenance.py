"""Marks every answer with where it came from: `X-MockBox-Source: mock | cache | ai | upstream
| ratelimit`, so a user can always tell a mock from the real API, and `X-MockBox-Region`, so
behind a CDN they can tell which region answered."""

from __future__ import annotations

from mitmproxy import http

from .flows import SOURCE
from .settings import Settings


class Provenance:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """A streamed answer's headers leave before the response hook (see bodycap)."""
        if flow.response is not None and flow.response.stream:
            self.response(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            headers = flow.response.headers
            headers["X-MockBox-Source"] = flow.metadata.get(SOURCE, "upstream")
            headers["X-MockBox-Region"] = self.settings.region
