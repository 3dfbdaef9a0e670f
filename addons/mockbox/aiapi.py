"""Admin API of AI synthesis: `GET /api/ai/usage`."""

from __future__ import annotations

from .admin import AdminServer, ApiHandler, Route
from .synthesize import Synthesize


def ai_routes(admin: AdminServer, synthesize: Synthesize) -> list[Route]:
    return [(r"/api/ai/usage", AIUsageHandler, {"admin": admin, "synthesize": synthesize})]


class AIUsageHandler(ApiHandler):
    synthesize: Synthesize

    def initialize(self, admin: AdminServer, synthesize: Synthesize) -> None:  # type: ignore[override]
        super().initialize(admin)
        self.synthesize = synthesize

    def get(self) -> None:
        synth = self.synthesize.synth
        usage = self.synthesize.usage.snapshot() if self.synthesize.usage else {}
        self.write_json(
            {
                "provider": synth.name if synth else None,
                "model": synth.model if synth else None,
                "breaker": synth.breaker.state if synth else None,
                **usage,
            }
        )
