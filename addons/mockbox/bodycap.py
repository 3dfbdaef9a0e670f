"""Holding an upstream's answer whole only while it is small enough to keep.

mitmproxy reads a body whole into memory before the `response` hook, unless the flow streams
it. The cache and the recorder need whole bodies, but only up to their caps (a 50 MB download
would otherwise sit in memory, then in the cache or a body file). So for a flow one of them would
keep, at `responseheaders`:
- an answer that announces a size within the cap is read whole, as before;
- one that announces more is streamed to the client as it arrives (mitmproxy's per-flow
  `response.stream`), and never kept;
- one of unknown length (chunked, or until the connection closes) is streamed too, with a copy
  kept while it stays within the cap; at the end that copy becomes the flow's body, so the
  cache or recorder keeps it as if it had been read whole.
A streamed answer's headers leave before the `response` hook runs: whatever the client must see
is added at `responseheaders`.
"""

from __future__ import annotations

from mitmproxy import http
from mitmproxy.net.http.http1 import expected_http_body_size

_KEY = "mockbox.bodycap"


class Capture:
    """A `response.stream` callable: each chunk goes on to the client at once; a copy is kept
    while the body stays within `limit` bytes (when `keep`)."""

    def __init__(self, limit: int, keep: bool) -> None:
        self.limit = limit
        self.size = 0
        self._kept: list[bytes] | None = [] if keep else None

    def __call__(self, chunk: bytes) -> bytes:
        self.size += len(chunk)
        if self._kept is not None:
            if self.size > self.limit:
                self._kept = None  # over the cap: from now on only counted
            elif chunk:
                self._kept.append(chunk)
        return chunk

    @property
    def whole(self) -> bytes | None:
        """The body, when it ended within the cap."""
        return b"".join(self._kept) if self._kept is not None else None


def held_whole(flow: http.HTTPFlow, limit: int) -> bool:
    """Call at `responseheaders`: True when the answer may be read whole as usual (it announces
    at most `limit` bytes, or it already streams)."""
    response = flow.response
    if response is None or response.stream:
        return True
    expected = _expected_size(flow, response)
    return expected is not None and 0 <= expected <= limit


def stream(flow: http.HTTPFlow, limit: int) -> None:
    """Call at `responseheaders` when not `held_whole`: stream the answer to the client as it
    arrives, keeping a copy while it fits when its size is not known (its headers leave now)."""
    assert flow.response is not None
    expected = _expected_size(flow, flow.response)
    capture = Capture(limit, keep=expected is None or expected < 0)
    flow.response.stream = capture
    flow.metadata[_KEY] = capture


def _expected_size(flow: http.HTTPFlow, response: http.Response) -> int | None:
    """The announced size; None or -1 when unknown (chunked, or until the connection closes)."""
    try:
        return expected_http_body_size(flow.request, response)
    except ValueError:  # a malformed Content-Length: mitmproxy refuses the answer itself
        return 0


def finish(flow: http.HTTPFlow) -> Capture | None:
    """Call at `response`: a streamed answer that fit is made the flow's body again (None is
    returned); the Capture of one that did not (its `size` is what was streamed), else None."""
    capture: Capture | None = flow.metadata.pop(_KEY, None)
    if capture is None or flow.response is None:
        return None
    whole = capture.whole
    if whole is None:
        return capture
    flow.response.raw_content = whole  # already sent: this is for whoever keeps it
    return None
