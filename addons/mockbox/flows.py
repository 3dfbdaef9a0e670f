"""The seam between mitmproxy flows and MockBox's pure core."""

from __future__ import annotations

import json
import logging
import socket
import struct
from typing import Any

from mitmproxy import ctx, http

from .core.render import Rendered
from .core.request import Headers, RequestView

logger = logging.getLogger(__name__)

SOURCE = "mockbox.source"  # flow.metadata key: mock | cache | ai | upstream | ratelimit
MOCK_ID = "mockbox.mock"
_VIEW = "mockbox.view"


def request_view(flow: http.HTTPFlow) -> RequestView:
    """The core's view of `flow.request`, built once per flow and shared by every addon."""
    view: RequestView | None = flow.metadata.get(_VIEW)
    if view is None:
        req = flow.request
        view = RequestView(
            method=req.method,
            scheme=req.scheme,
            host=req.pretty_host,
            port=req.port,
            path=req.path.partition("?")[0],
            query=tuple(req.query.items(multi=True)),
            headers=Headers(req.headers.items(multi=True)),
            body=req.get_content(strict=False) or b"",
            client=flow.client_conn.peername[0] if flow.client_conn.peername else "",
        )
        flow.metadata[_VIEW] = view
    return view


def answer(flow: http.HTTPFlow, rendered: Rendered, source: str) -> None:
    flow.response = http.Response.make(
        rendered.status,
        rendered.body,
        [(k.encode(), v.encode("utf-8", "replace")) for k, v in rendered.headers],
    )
    flow.metadata[SOURCE] = source


def answer_json(flow: http.HTTPFlow, status: int, payload: dict[str, Any], source: str) -> None:
    """An error or notice from MockBox itself, always as JSON."""
    body = json.dumps(payload, ensure_ascii=False, indent=2).encode()
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
