"""Marks every answer with where it came from: `X-MockBox-Source: mock | cache | ai | upstream
| ratelimit`, so a user can always tell a mock from the real API."""

from __future__ import annotations

from mitmproxy import http

from .flows import SOURCE


class Provenance:
    def response(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            flow.response.headers["X-MockBox-Source"] = flow.metadata.get(SOURCE, "upstream")
