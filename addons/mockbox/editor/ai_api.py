"""/api/ai/generate and /api/ai/improve: the editor's AI controls, on the proxy's Synthesizer.

Both answer like the proxy's AI path does when they cannot: 429 with `retry_after` and
Retry-After when the AI budget is spent, the provider's 502/503/504 errors otherwise, so the
page can show one message with the time to retry for all of them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..admin import AdminServer
from ..ai.service import Outcome, Synthesizer
from ..core.ai_prompt import COMPLEXITY, GenerationRequest
from ..core.improve import siblings_of
from ..core.mockedit import dump_mock
from ..core.mockstore import Invalid
from ..core.mockwriter import host_file_name, mock_from_answer
from ..core.request import Headers
from ..ratelimit import RateLimiter
from ..synthesize import GENERATED_FOLDER, Synthesize
from .base import BadRequest, EditorHandler, Unavailable, text_field
from .mocks_api import mock_text


class AIHandler(EditorHandler):
    synthesize: Synthesize
    ratelimit: RateLimiter

    def initialize(  # type: ignore[override]
        self, admin: AdminServer, synthesize: Synthesize, ratelimit: RateLimiter
    ) -> None:
        super().initialize(admin)
        self.synthesize, self.ratelimit = synthesize, ratelimit

    @property
    def synth(self) -> Synthesizer:
        synth = self.synthesize.synth
        if synth is None:
            raise Unavailable("AI is not configured")
        return synth

    @property
    def client(self) -> str:
        """Whose budget pays: the same client address the proxy's AI path charges."""
        return self.request.remote_ip or "anonymous"

    async def refused(self) -> bool:
        """Answer 429 when the client is over the `ai` rate-limit tier or its AI budget is
        spent: the editor's AI buttons cost what the proxy's AI path costs."""
        headers = Headers(self.request.headers.get_all())
        refusal = await self.ratelimit.check_tier("ai", self.client, headers)
        if refusal is None:
            refusal = await self.synthesize.refusal(self.client)
        if refusal is None:
            return False
        self.set_header("Retry-After", str(refusal["retry_after"]))
        self.write_json(refusal, 429)
        return True

    def send_failure(self, outcome: Outcome[Any]) -> None:
        assert outcome.error is not None
        for name, value in outcome.headers.items():
            self.set_header(name, value)
        self.write_json(outcome.error, outcome.status)

    @staticmethod
    def usage(outcome: Outcome[Any]) -> dict[str, Any]:
        return {
            "provider": outcome.provider,
            "model": outcome.model,
            "tokens_in": outcome.tokens_in,
            "tokens_out": outcome.tokens_out,
            "cost_usd": round(outcome.cost, 6),
        }


class GenerateHandler(AIHandler):
    """A draft mock for a method and URL, from a description, a schema hint and a level of
    detail; the same Synthesizer (and the same examples of the API) as the proxy uses."""

    async def post(self) -> None:
        greq = generation_request(self.json_body())
        synth = self.synth
        if await self.refused():
            return
        greq = self.synthesize.grounded(greq)
        outcome = await synth.generate(greq, self.library.index, greq.seed())
        await self.synthesize.spend(self.client, outcome)
        if outcome.answer is None:
            self.send_failure(outcome)
            return
        mock = mock_from_answer(greq, outcome.answer)
        self.write_json(
            {
                "mock": mock,
                "yaml": dump_mock(mock),
                "explanation": outcome.answer.explanation,
                "file": f"{GENERATED_FOLDER}/{host_file_name(greq.host)}",
                **self.usage(outcome),
            }
        )


class ImproveHandler(AIHandler):
    """A proposed change of one mock for an instruction; nothing is saved here."""

    async def post(self) -> None:
        data = self.json_body()
        instruction = text_field(data, "instruction", 1000, required=True)
        file = text_field(data, "file", 255) or "draft.yaml"
        store = self.store
        mock, problems = store.check(file, mock_text(data))
        if problems:
            raise Invalid(
                "fix the mock's problems before asking for an improvement",
                problems=[{"line": p.line, "message": p.message} for p in problems],
            )
        synth = self.synth
        if await self.refused():
            return

        def problems_of(proposed: dict[str, Any]) -> list[str]:
            return [p.message for p in store.check(file, dump_mock(proposed))[1]]

        host = mock.get("request", {}).get("host")
        siblings = siblings_of(self.library.index.mocks, host)
        outcome = await synth.improve(mock, instruction, siblings, problems_of)
        await self.synthesize.spend(self.client, outcome)
        if outcome.answer is None:
            self.send_failure(outcome)
            return
        proposal = outcome.answer
        self.write_json(
            {
                "mocks": proposal.mocks,
                "yaml": [dump_mock(m) for m in proposal.mocks],
                "original_yaml": dump_mock(mock),
                "explanation": proposal.explanation,
                **self.usage(outcome),
            }
        )


def generation_request(data: dict[str, Any]) -> GenerationRequest:
    """The dialog's fields: method, url (or host + path), description, complexity, schema hint."""
    method = text_field(data, "method", 16) or "GET"
    if not method.isalpha():
        raise BadRequest("method must be letters only, like GET")
    url = text_field(data, "url", 2000)
    if not url:
        host = text_field(data, "host", 253, required=True)
        path = text_field(data, "path", 2000) or "/"
        url = f"https://{host}{path if path.startswith('/') else '/' + path}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest("url must be absolute, like https://api.example.com/users/7")
    complexity = text_field(data, "complexity", 16) or "medium"
    if complexity not in COMPLEXITY:
        raise BadRequest(f"complexity must be one of {', '.join(COMPLEXITY)}")
    return GenerationRequest(
        method.upper(),
        url,
        query=parse_qsl(parts.query),
        body=data.get("body"),
        description=text_field(data, "description", 4000),
        schema_hint=text_field(data, "schema_hint", 2000),
        complexity=complexity,
    )
