"""The admin server on its own port: /healthz and /metrics (the editor and /api build on it).

It binds to 127.0.0.1 unless told otherwise, and refuses to bind anywhere else without a
token, because the admin API can change what the proxy answers.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web
from mitmproxy import ctx, exceptions
from mitmproxy.addonmanager import Loader
from tornado.httputil import HTTPServerRequest

from . import __version__
from .apiguard import (
    AuthThrottle,
    cross_site_refusal,
    host_refusal,
    security_headers,
    token_matches,
)
from .apiguard import is_loopback as _is_loopback
from .metrics import Metrics
from .mocks import MockServer
from .settings import OptionalInt, OptionalStr, Settings
from .state import SharedState

logger = logging.getLogger(__name__)

MIN_TOKEN_CHARS = 16  # beyond loopback: a token short enough to guess is no protection
MAX_BODY_BYTES = 4_000_000  # tornado's default (100 MB) would let any client fill the memory


type Route = tuple[str, type[tornado.web.RequestHandler], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Access:
    """What a request's Authorization header earned it."""

    granted: bool  # the right token, or no token is set
    guessed: bool = False  # a wrong token
    retry_after: int = 0  # > 0: a wrong token from an address over the guessing limit


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
        app = GuardedApplication(
            self,
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

    def authenticate(self, request: HTTPServerRequest) -> Access:
        """Whether the caller sent the right token. Wrong tokens count as guesses against the
        caller's address; past ten a minute its wrong tokens get 429, while the right one still
        passes, so that someone guessing from a shared address cannot lock its owner out."""
        if not self.token:
            return Access(granted=True)
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if not given and not scheme:
            return Access(granted=False)  # no token at all: not a guess
        if scheme.lower() == "bearer" and token_matches(given, self.token):
            return Access(granted=True)
        client = request.remote_ip or ""
        wait = self.throttle.retry_after(client)
        if not wait:
            self.throttle.failed(client)
        return Access(granted=False, guessed=True, retry_after=wait)

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

    def authenticate(self) -> Access | None:
        """The caller's access; None after answering a wrong token (401, or 429 while its
        address is over the guessing limit)."""
        access = self.admin.authenticate(self.request)
        if access.retry_after:
            wait = access.retry_after
            self.set_header("Retry-After", str(wait))
            self.write_json(
                {
                    "error": "TOO_MANY_FAILED_LOGINS",
                    "message": f"too many requests with a wrong token; retry in {wait} s",
                    "retry_after": wait,
                },
                429,
            )
            return None
        if access.guessed:
            self.set_header("WWW-Authenticate", "Bearer")
            self.write_json({"error": "UNAUTHORIZED", "message": "wrong admin token"}, 401)
            return None
        return access

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(payload, indent=2))


class ApiHandler(_AdminHandler):
    """Base of /api/... handlers: a token, when set, is required; errors are JSON."""

    def prepare(self) -> None:
        access = self.authenticate()
        if access is None:
            return
        if not access.granted:
            self.set_header("WWW-Authenticate", "Bearer")
            self.write_json(
                {"error": "UNAUTHORIZED", "message": "send Authorization: Bearer <admin token>"},
                401,
            )
            return
        refused = cross_site_refusal(self.request)
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
        access = self.authenticate()
        if access is not None:
            self.write_json(await self.admin.health(detailed=access.granted))


class HostRefusedHandler(_AdminHandler):
    """Any route, any method, when the Host header does not name this machine."""

    def initialize(self, admin: AdminServer, reason: str = "") -> None:  # type: ignore[override]
        super().initialize(admin)
        self.reason = reason

    def prepare(self) -> None:
        self.write_json({"error": "CROSS_SITE_REFUSED", "message": self.reason}, 403)


class GuardedApplication(tornado.web.Application):
    """Checks the Host header before any route sees the request (see apiguard.py): a
    DNS-rebinding page must not read /healthz, /metrics or the editor page either."""

    def __init__(self, admin: AdminServer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.admin = admin

    def find_handler(self, request: HTTPServerRequest, **kwargs: Any) -> Any:
        refused = host_refusal(request, self.admin.host)
        if refused is not None:
            args = {"admin": self.admin, "reason": refused}
            return self.get_handler_delegate(request, HostRefusedHandler, args)
        return super().find_handler(request, **kwargs)


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
