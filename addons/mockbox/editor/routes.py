"""The editor's routes, added to the admin server's tornado app."""

from __future__ import annotations

from ..admin import AdminServer, Route
from ..ratelimit import RateLimiter
from ..synthesize import Synthesize
from .ai_api import GenerateHandler, ImproveHandler
from .mocks_api import MockHandler, MocksHandler, ValidateHandler
from .pages import STATIC, AssetHandler, PageHandler
from .traffic_api import DraftHandler, ExchangeHandler, TrafficHandler


def editor_routes(
    admin: AdminServer, synthesize: Synthesize, ratelimit: RateLimiter
) -> list[Route]:
    a = {"admin": admin}
    ai = {"admin": admin, "synthesize": synthesize, "ratelimit": ratelimit}
    return [
        (r"/", PageHandler, {}),
        (r"/assets/(.*)", AssetHandler, {"path": str(STATIC)}),
        (r"/api/mocks", MocksHandler, a),
        (r"/api/mocks/validate", ValidateHandler, a),
        (r"/api/mocks/(.+)/(\d+)", MockHandler, a),
        (r"/api/traffic", TrafficHandler, a),
        (r"/api/traffic/(\d+)", ExchangeHandler, a),
        (r"/api/traffic/(\d+)/draft", DraftHandler, a),
        (r"/api/ai/generate", GenerateHandler, ai),
        (r"/api/ai/improve", ImproveHandler, ai),
    ]
