"""The admin server on its own port: /healthz and /metrics (the editor and /api build on it).

It binds to 127.0.0.1 unless told otherwise, and refuses to bind anywhere else without a
token, because the admin API can change what the proxy answers.
"""

from __future__ import annotations

import hmac
import json
import logging
from http import HTTPStatus
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web
from mitmproxy import ctx, exceptions
from mitmproxy.addonmanager import Loader
from mitmproxy.proxy import server_hooks

from . import __version__
from .apiguard import AuthThrottle, cross_site_refusal, reaches_self, security_headers
from .apiguard import is_loopback as _is_loopback
from .metrics import Metrics
from .mocks import MockServer
from .settings import OptionalInt, OptionalStr, Settings
from .state import SharedState

logger = logging.getLogger(__name__)

MIN_TOKEN_CHARS = 16  # beyond loopback: a token short enough to guess is no protection
MAX_BODY_BYTES = 4_000_000  # tornado's default (100 MB) would let any client fill the memory


type Route = tuple[str, type[tornado.web.RequestHandler], dict[str, Any]]


class AdminServer:
    def __init__(
        self, settings: Settings, metrics: Metrics, mocks: MockServer, state: SharedState
    ) -> None:
        self.settings, self.metrics, self.mocks, self.state = settings, metrics, mocks, state
        self._server: tornado.httpserver.HTTPServer | None = None
        self.bound: tuple[str, int] | None = None
        self.routes: list[Route] = []  # /api/... routes that features add (see stack.build)
        self.throttle = AuthThrottle()

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
        if not watched or _is_loopback(self.host):
            return
        if not self.token:
            raise exceptions.OptionsError(
                f"the admin server would listen on {self.host}, beyond this machine, "
                "without a token: set MOCKBOX_ADMIN_TOKEN (or admin.token) first"
            )
        if len(self.token) < MIN_TOKEN_CHARS:
            raise exceptions.OptionsError(
                f"the admin token is too short to guard {self.host}: use at least "
                f"{MIN_TOKEN_CHARS} characters (for example: openssl rand -hex 24)"
            )

    async def running(self) -> None:
        if self.port == 0 or self._server is not None:
            return
        app = tornado.web.Application(
            [
                (r"/healthz", HealthHandler, {"admin": self}),
                (r"/metrics", MetricsHandler, {"admin": self}),
                *self.routes,
            ],
            default_handler_class=NotFoundHandler,
            default_handler_args={"admin": self},
        )
        try:
            sockets = tornado.netutil.bind_sockets(self.port, self.host)
        except OSError as e:
            logger.error(
                f"mockbox: admin server cannot listen on {self.host}:{self.port}: {e.strerror}. "
                "Choose another port with --admin-port (or --set mockbox_admin_port=N)."
            )
            return
        server = tornado.httpserver.HTTPServer(
            app, max_body_size=MAX_BODY_BYTES, idle_connection_timeout=120, body_timeout=60
        )
        server.add_sockets(sockets)
        self._server = server
        self.bound = sockets[0].getsockname()[:2]
        logger.info(f"mockbox: admin server on http://{_url_host(self.host)}:{self.bound[1]}")

    async def done(self) -> None:
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
            self._server = None

    async def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        """The proxy never forwards to this admin server: a proxy client would otherwise reach
        an API meant for this machine only (mitmproxy guards its own proxy port the same way)."""
        bound, address = self.bound, data.server.address
        if bound is not None and address is not None and await reaches_self(address, bound):
            data.server.error = (
                f"MockBox does not forward requests to its own admin server (port "
                f"{bound[1]}); open it directly, without the proxy"
            )

    def authorized(self, header: str | None) -> bool:
        """Constant-time check of `Authorization: Bearer <token>` (always true without a token)."""
        if not self.token:
            return True
        scheme, _, given = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.encode(), self.token.encode()
        )

    async def health(self, detailed: bool = True) -> dict[str, Any]:
        """The instance's state. Without `detailed` (a caller without the token, when one is
        set) it leaves out what maps the machine: the folder, file names, upstream URLs."""
        library = self.mocks.library
        problems = library.problems if library else []
        mocks: dict[str, Any] = {
            "loaded": len(library.index) if library else 0,
            "files": len(library.files) if library else 0,
            # A digest of the files served: instances serving the same mocks agree.
            "version": library.digest[:16] if library else None,
            "reloads": library.reloads if library else 0,
            "problem_count": len(problems),
        }
        health: dict[str, Any] = {
            "status": "ok",
            "version": __version__,
            "region": self.settings.region,
            "mocks": mocks,
            "unmatched": self.mocks.unmatched,
            "redis": await self.state.status(),
        }
        if detailed:
            mocks["folder"] = str(library.root) if library else None
            mocks["problems"] = [p.to_json() for p in problems]
            health["proxy"] = {"mode": list(ctx.options.mode)}
        return health


class _AdminHandler(tornado.web.RequestHandler):
    admin: AdminServer

    def initialize(self, admin: AdminServer) -> None:
        self.admin = admin

    def set_default_headers(self) -> None:
        security_headers(self)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors are JSON like every other answer, never tornado's HTML page or a traceback."""
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, tornado.web.HTTPError) and status_code < 500:
            code = HTTPStatus(status_code).name if status_code in HTTPStatus else "HTTP_ERROR"
            message = error.log_message or error.reason or HTTPStatus(status_code).phrase
            self.write_json({"error": code, "message": message}, status_code)
        else:
            self.write_json(
                {"error": "INTERNAL_ERROR", "message": "the admin server failed; see its log"},
                500,
            )

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(payload, indent=2))


class ApiHandler(_AdminHandler):
    """Base of /api/... handlers: a token, when set, is required; errors are JSON."""

    def prepare(self) -> None:
        client = self.request.remote_ip or ""
        wait = self.admin.throttle.retry_after(client)
        if wait:  # too many wrong tokens from this address: guessing is slowed to a crawl
            self.set_header("Retry-After", str(wait))
            self.write_json(
                {
                    "error": "TOO_MANY_FAILED_LOGINS",
                    "message": f"too many requests with a wrong token; retry in {wait} s",
                    "retry_after": wait,
                },
                429,
            )
            return
        given = self.request.headers.get("Authorization")
        if not self.admin.authorized(given):
            if given:  # a guess; a call without a token (the editor's first load) is not
                self.admin.throttle.failed(client)
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
        detailed = self.admin.authorized(self.request.headers.get("Authorization"))
        self.write_json(await self.admin.health(detailed))


class NotFoundHandler(_AdminHandler):
    """Any path no route serves: a JSON 404 for every method."""

    def prepare(self) -> None:
        self.write_json(
            {"error": "NOT_FOUND", "message": f"no such endpoint: {self.request.path}"}, 404
        )


class MetricsHandler(_AdminHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish(self.admin.metrics.exposition())


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
