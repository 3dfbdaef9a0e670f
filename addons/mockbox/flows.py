"""The seam between mitmproxy flows and MockBox's pure core."""

from __future__ import annotations

import json
import logging
import socket
import struct
from collections.abc import Iterable
from functools import cached_property
from typing import Any

from mitmproxy import ctx, http
from mitmproxy.proxy import mode_specs

from .core.render import Rendered
from .core.request import Headers, RequestView

logger = logging.getLogger(__name__)

SOURCE = "mockbox.source"  # flow.metadata key: mock | cache | ai | upstream | ratelimit
MOCK_ID = "mockbox.mock"
BACKGROUND = "mockbox.background"  # flow.metadata key: a flow MockBox made itself (no client)
# Set by the recorder: this request must reach the real upstream, so no addon may answer it.
RECORDING = "mockbox.recording"
_VIEW = "mockbox.view"


class FlowRequestView(RequestView):
    """The core's view of a live mitmproxy request; headers, query and body are read lazily."""

    def __init__(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        peer = flow.client_conn.peername
        super().__init__(
            req.method,
            req.scheme,
            _target_host(flow),
            req.port,
            req.path.partition("?")[0],
            client=peer[0] if peer else "",
        )
        self._request = req

    @cached_property
    def query(self) -> tuple[tuple[str, str], ...]:  # type: ignore[override]
        return tuple(self._request.query.items(multi=True))

    @cached_property
    def headers(self) -> Headers:  # type: ignore[override]
        return Headers(self._request.headers.items(multi=True))

    @cached_property
    def body(self) -> bytes:  # type: ignore[override]
        return self._request.get_content(strict=False) or b""


def request_view(flow: http.HTTPFlow) -> RequestView:
    """The core's view of `flow.request`, built once per flow and shared by every addon."""
    view: RequestView | None = flow.metadata.get(_VIEW)
    if view is None:
        view = flow.metadata[_VIEW] = FlowRequestView(flow)
    return view


def _target_host(flow: http.HTTPFlow) -> str:
    """The host the client asked for. A forward or reverse proxy knows it from the request
    target (an absolute-form URL outranks the Host header); transparent-style modes only
    see an address, so there the Host header tells."""
    mode = flow.client_conn.proxy_mode
    if isinstance(mode, (mode_specs.RegularMode, mode_specs.ReverseMode, mode_specs.UpstreamMode)):
        return flow.request.host
    return flow.request.pretty_host


def answer(flow: http.HTTPFlow, rendered: Rendered, source: str) -> None:
    flow.response = http.Response.make(
        rendered.status,
        rendered.body,
        [(k.encode(), v.encode("utf-8", "replace")) for k, v in rendered.headers],
    )
    flow.metadata[SOURCE] = source


def make_headers(fields: Iterable[tuple[str, str]]) -> http.Headers:
    """mitmproxy headers from text fields (the inverse of `headers.items(multi=True)`)."""
    return http.Headers([(k.encode(), v.encode("utf-8", "surrogateescape")) for k, v in fields])


def answer_json(flow: http.HTTPFlow, status: int, payload: dict[str, Any], source: str) -> None:
    """An error or notice from MockBox itself, always as JSON. Request text decoded with
    surrogateescape (non-UTF-8 bytes in a method or target) becomes JSON escapes (`\\udcff`)
    instead of failing to encode."""
    body = json.dumps(payload, ensure_ascii=False, indent=2).encode("utf-8", "backslashreplace")
    answer(flow, Rendered(status, [("Content-Type", "application/json")], body), source)


def reset_connection(flow: http.HTTPFlow) -> None:
    """Abort the client connection with a TCP RST (not a clean close), like a crashed server."""
    proxyserver: Any = ctx.master.addons.get("proxyserver")
    try:
        handler = proxyserver.connections[flow.client_conn.id]
        writer = handler.transports[flow.client_conn].writer
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (AttributeError, KeyError, OSError, TypeError):
        # mitmproxy internals moved, or not a TCP socket: a plain close still fails the request.
        logger.debug("mockbox: could not set SO_LINGER; closing instead of resetting")
    flow.kill()
