"""The MockCdnHeaders addon: a mock's `cache:` setting, as headers a CDN in front understands.

`cache: {ttl: 60, cdn_ttl: 300}` sends `Cache-Control: public, max-age=60, s-maxage=300`
with `Surrogate-Key` / `Cache-Tag` naming the host and the mock, so a CDN keeps the answer
and a purge can target one mock or one host. `cache: true` uses `cache.cdn_ttl` from the
configuration; `cache: false` sends `Cache-Control: no-store`.
"""

from __future__ import annotations

from mitmproxy import http

from .core.cachepolicy import MockCaching
from .flows import MOCK_ID, make_headers, request_view
from .mocks import MockServer
from .settings import Settings


class MockCdnHeaders:
    def __init__(self, settings: Settings, mocks: MockServer) -> None:
        self.settings, self.mocks = settings, mocks
        self._version = -1
        self._caching: dict[str, MockCaching] = {}

    def _settings(self) -> dict[str, MockCaching]:
        """Each mock's parsed `cache:` setting, rebuilt when the mocks change."""
        library = self.mocks.library
        if library is None:
            return {}
        if library.reloads != self._version:
            default_cdn_ttl = int(self.settings.config.get("cache", "cdn_ttl"))
            caching = {}
            for mock in library.index.mocks:
                parsed = MockCaching.parse(mock.raw.get("cache"), default_cdn_ttl)
                if parsed is not None:
                    caching[mock.id] = parsed
            self._caching, self._version = caching, library.reloads
        return self._caching

    def response(self, flow: http.HTTPFlow) -> None:
        mock_id = flow.metadata.get(MOCK_ID)
        response = flow.response
        # Server errors (faults, template errors) are never made cacheable.
        if mock_id is None or response is None or response.status_code >= 500:
            return
        caching = self._settings().get(mock_id)
        if caching is None:
            return
        fields = list(response.headers.items(multi=True))
        response.headers = make_headers(caching.headers(fields, request_view(flow).host, mock_id))
