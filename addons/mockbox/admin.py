"""The admin server on its own port: /healthz and /metrics (the editor and /api build on it).

It binds to 127.0.0.1 unless told otherwise, and refuses to bind anywhere else without a
token, because the admin API can change what the proxy answers.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web
from mitmproxy import ctx, exceptions
from mitmproxy.addonmanager import Loader

from . import __version__
from .apiguard import cross_site_refusal
from .apiguard import is_loopback as _is_loopback
from .metrics import Metrics
from .mocks import MockServer
from .settings import OptionalInt, OptionalStr, Settings
from .state import SharedState

logger = logging.getLogger(__name__)


type Route = tuple[str, type[tornado.web.RequestHandler], dict[str, Any]]


class AdminServer:
    def __init__(
        self, settings: Settings, metrics: Metrics, mocks: MockServer, state: SharedState
    ) -> None:
        self.settings, self.metrics, self.mocks, self.state = settings, metrics, mocks, state
        self._server: tornado.httpserver.HTTPServer | None = None
        self.bound: tuple[str, int] | None = None
        self.routes: list[Route] = []  # /api/... routes that features add (see stack.build)

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "mockbox_admin_host",
            OptionalStr,
            None,
            "Admin server address (MOCKBOX_ADMIN_HOST; default 127.0.0.1).",
        )
        loader.add_option(
            "mockbox_admin_port",
            OptionalInt,
            None,
            "Admin server port, 0 to turn it off (MOCKBOX_ADMIN_PORT; default 8081; "
            "mitmweb uses 8081 for its own UI, so pick another there).",
        )

    @property
    def host(self) -> str:
        return str(self.settings.value("mockbox_admin_host", "admin", "host"))

    @property
    def port(self) -> int:
        return int(self.settings.value("mockbox_admin_port", "admin", "port"))

    @property
    def token(self) -> str:
        return str(self.settings.config.get("admin", "token"))

    def configure(self, updated: set[str]) -> None:
        watched = updated & {"mockbox_admin_host", "mockbox_config"}
        if watched and not self.token and not _is_loopback(self.host):
            raise exceptions.OptionsError(
                f"the admin server would listen on {self.host}, beyond this machine, "
                "without a token: set MOCKBOX_ADMIN_TOKEN (or admin.token) first"
            )

    async def running(self) -> None:
        if self.port == 0 or self._server is not None:
            return
        app = tornado.web.Application(
            [
                (r"/healthz", HealthHandler, {"admin": self}),
                (r"/metrics", MetricsHandler, {"admin": self}),
                *self.routes,
            ]
        )
        try:
            sockets = tornado.netutil.bind_sockets(self.port, self.host)
        except OSError as e:
            logger.error(
                f"mockbox: admin server cannot listen on {self.host}:{self.port}: {e.strerror}. "
                "Choose another port with --admin-port (or --set mockbox_admin_port=N)."
            )
            return
        server = tornado.httpserver.HTTPServer(app)
        server.add_sockets(sockets)
        self._server = server
        self.bound = sockets[0].getsockname()[:2]
        logger.info(f"mockbox: admin server on http://{_url_host(self.host)}:{self.bound[1]}")

    async def done(self) -> None:
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
            self._server = None

    def authorized(self, header: str | None) -> bool:
        """Constant-time check of `Authorization: Bearer <token>` (always true without a token)."""
        if not self.token:
            return True
        scheme, _, given = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.encode(), self.token.encode()
        )

    async def health(self) -> dict[str, Any]:
        library = self.mocks.library
        problems = library.problems if library else []
        return {
            "status": "ok",
            "version": __version__,
            "region": self.settings.region,
            "mocks": {
                "loaded": len(library.index) if library else 0,
                "files": len(library.files) if library else 0,
                # A digest of the files served: instances serving the same mocks agree.
                "version": library.digest[:16] if library else None,
                "reloads": library.reloads if library else 0,
                "folder": str(library.root) if library else None,
                "problems": [p.to_json() for p in problems],
            },
            "unmatched": self.mocks.unmatched,
            "redis": await self.state.status(),
            "proxy": {"mode": list(ctx.options.mode)},
        }


class _AdminHandler(tornado.web.RequestHandler):
    admin: AdminServer

    def initialize(self, admin: AdminServer) -> None:
        self.admin = admin

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(payload, indent=2))


class ApiHandler(_AdminHandler):
    """Base of /api/... handlers: a token, when set, is required; errors are JSON."""

    def prepare(self) -> None:
        if not self.admin.authorized(self.request.headers.get("Authorization")):
            self.set_header("WWW-Authenticate", "Bearer")
            self.write_json(
                {"error": "UNAUTHORIZED", "message": "send Authorization: Bearer <admin token>"},
                401,
            )
            return
        refused = cross_site_refusal(self.request, self.admin.host)
        if refused is not None:  # see apiguard.py: other web pages must not drive the API
            self.write_json({"error": "CROSS_SITE_REFUSED", "message": refused}, 403)

    def json_body(self) -> dict[str, Any] | None:
        """The request body as a JSON object; None (after answering 400) when it is not one."""
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError as e:
            self.write_json({"error": "BAD_REQUEST", "message": f"invalid JSON: {e}"}, 400)
            return None
        if not isinstance(body, dict):
            self.write_json({"error": "BAD_REQUEST", "message": "expected a JSON object"}, 400)
            return None
        return body

    def bad_request(self, message: str) -> None:
        self.write_json({"error": "BAD_REQUEST", "message": message}, 400)


class HealthHandler(_AdminHandler):
    async def get(self) -> None:
        self.write_json(await self.admin.health())


class MetricsHandler(_AdminHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish(self.admin.metrics.exposition())


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
