"""The Synthesizer: one call from a request to a checked answer, or to a clear error.

Provider call with a timeout → parse → check → one repair attempt with the errors → 502.
A timeout is a 504; a provider that keeps failing trips a circuit breaker (503 with a retry
time). Nothing here can raise into the proxy: every failure becomes an Outcome.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.ai_answer import AIAnswer, check_answer
from ..core.ai_prompt import (
    SYSTEM_PROMPT,
    GenerationRequest,
    build_prompt,
    example_of,
    repair_prompt,
)
from ..core.breaker import CircuitBreaker
from ..core.improve import (
    IMPROVE_SYSTEM_PROMPT,
    Improvement,
    NotApplicable,
    check_improvement,
    improve_offline,
    improve_prompt,
    improve_schema,
    understood_instructions,
)
from ..core.index import MockIndex
from ..core.model import Mock
from ..core.offline import OfflineGenerator
from ..core.redaction import scrub_credentials
from ..core.templating import TemplateEngine
from .providers import (
    ANSWER_TOOL,
    DEFAULT_MODELS,
    Provider,
    ProviderSettings,
    Tool,
    make_provider,
    sdk_errors,
)
from .usage import BudgetLimits, UsageBook

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AISettings:
    provider: ProviderSettings
    max_body_bytes: int
    examples: int
    example_chars: int
    breaker_failures: int
    breaker_cooldown: float
    budget: BudgetLimits
    prices: dict[str, dict[str, float]]
    faker_locale: str = "en_US"

    @classmethod
    def from_config(cls, ai: Mapping[str, Any], faker_locale: str = "en_US") -> AISettings:
        provider = str(ai["provider"])
        budget = ai["budget"]
        return cls(
            provider=ProviderSettings(
                provider=provider,
                model=str(ai["model"] or DEFAULT_MODELS.get(provider, "offline")),
                base_url=str(ai["base_url"]),
                temperature=float(ai["temperature"]),
                max_tokens=int(ai["max_tokens"]),
                timeout=float(ai["timeout"]),
                max_retries=int(ai["max_retries"]),
                max_answer_bytes=int(ai["max_answer_bytes"]),
            ),
            max_body_bytes=int(ai["max_body_bytes"]),
            examples=int(ai["examples"]),
            example_chars=int(ai["example_chars"]),
            breaker_failures=int(ai["breaker"]["failures"]),
            breaker_cooldown=float(ai["breaker"]["cooldown"]),
            budget=BudgetLimits(
                int(budget["client_tokens_per_day"]),
                int(budget["total_tokens_per_day"]),
                float(budget["client_cost_per_day"]),
                float(budget["total_cost_per_day"]),
            ),
            prices={k: dict(v) for k, v in ai["prices"].items()},
            faker_locale=faker_locale,
        )


@dataclass(slots=True)
class Outcome[T]:
    """A checked answer (an HTTP answer, a mock improvement), or a clear error."""

    answer: T | None
    status: int = 200
    error: dict[str, Any] | None = None
    provider: str = ""
    model: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    latency: float = 0.0
    outcome: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)


def request_key(req: GenerationRequest) -> str:
    """Method, URL (with query) and a hash of the body: the same request, the same answer."""
    body = json.dumps(req.body, sort_keys=True, default=str).encode()
    return f"{req.method.upper()} {req.url} {hashlib.sha256(body).hexdigest()[:16]}"


class Synthesizer:
    def __init__(self, settings: AISettings, engine: TemplateEngine, usage: UsageBook) -> None:
        self.settings = settings
        self.usage = usage
        self.offline = OfflineGenerator(engine, settings.faker_locale)
        p = settings.provider
        self.provider: Provider | None = None if p.provider == "offline" else make_provider(p)
        timeouts, errors = sdk_errors() if self.provider else ((), ())
        self._timeouts: tuple[type[BaseException], ...] = (TimeoutError, *timeouts)
        self._errors: tuple[type[BaseException], ...] = errors
        self.breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown)
        self._inflight: dict[str, asyncio.Future[Outcome[AIAnswer]]] = {}

    @property
    def name(self) -> str:
        return self.settings.provider.provider

    @property
    def model(self) -> str:
        return self.settings.provider.model if self.provider else "offline"

    async def generate(
        self, req: GenerationRequest, index: MockIndex, seed: int
    ) -> Outcome[AIAnswer]:
        """One answer per distinct request at a time: concurrent twins wait for the first."""
        key = request_key(req)
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Outcome[AIAnswer]] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            outcome = await self._generate(req, index, seed)
        except Exception as e:  # the last line of defence: report, never raise into the proxy
            logger.error(f"mockbox: AI synthesis failed unexpectedly: {self._traceback()}")
            outcome = self._error(
                502, "AI_GENERATION_FAILED", f"internal error: {type(e).__name__}"
            )
        finally:
            self._inflight.pop(key, None)
        future.set_result(outcome)
        return outcome

    async def improve(
        self,
        mock: dict[str, Any],
        instruction: str,
        siblings: list[Mock],
        problems_of: Callable[[dict[str, Any]], list[str]],
    ) -> Outcome[Improvement]:
        """A proposed change of `mock`: offline transformations, or the LLM's checked answer."""
        started = time.monotonic()
        if self.provider is None:
            return self._improve_offline(mock, instruction, siblings, started)
        examples = [example_of(m) for m in siblings[: self.settings.examples]]
        prompt = improve_prompt(mock, instruction, examples)
        tool = Tool("mock_change", "Send the changed mock(s).", improve_schema())
        try:
            return await self._ask(
                IMPROVE_SYSTEM_PROMPT,
                prompt,
                tool,
                lambda data: check_improvement(data, problems_of),
                started,
            )
        except Exception as e:  # reported to the editor, never raised into the admin server
            logger.error(f"mockbox: AI improvement failed unexpectedly: {self._traceback()}")
            return self._error(502, "AI_GENERATION_FAILED", f"internal error: {type(e).__name__}")

    async def _generate(
        self, req: GenerationRequest, index: MockIndex, seed: int
    ) -> Outcome[AIAnswer]:
        started = time.monotonic()
        if self.provider is None:
            return self._offline(req, index, seed, started)

        def check(data: Any) -> tuple[AIAnswer | None, list[str]]:
            checked = check_answer(data, req.body_schema, self.settings.max_body_bytes)
            return checked.answer, checked.errors

        return await self._ask(SYSTEM_PROMPT, build_prompt(req), ANSWER_TOOL, check, started)

    async def _ask[T](
        self,
        system: str,
        prompt: str,
        tool: Tool,
        check: Callable[[Any], tuple[T | None, list[str]]],
        started: float,
    ) -> Outcome[T]:
        """Provider call with a timeout → check → one repair attempt with the errors → 502.
        A timeout is a 504; a provider that keeps failing trips the breaker (503)."""
        assert self.provider is not None
        if not self.breaker.allow():
            retry = max(1, round(self.breaker.retry_after()))
            out: Outcome[T] = self._error(
                503,
                "AI_PROVIDER_UNAVAILABLE",
                f"The AI provider {self.name} failed {self.settings.breaker_failures} times in a "
                f"row; MockBox stopped calling it for a while. Retry in {retry} s.",
                retry_after=retry,
            )
            out.headers["Retry-After"] = str(retry)
            self._record(out, "breaker_open", started)
            return out
        asked = prompt
        tokens_in = tokens_out = 0
        errors: list[str] = []
        try:
            for attempt in range(2):
                completion = await asyncio.wait_for(
                    self.provider.complete(system, asked, tool),
                    timeout=self.settings.provider.timeout
                    * (self.settings.provider.max_retries + 1),
                )
                tokens_in += completion.tokens_in
                tokens_out += completion.tokens_out
                value, errors = check(completion.data)
                if value is not None:
                    self.breaker.success()
                    return self._finish(
                        Outcome(value, 200),
                        "repaired" if attempt else "ok",
                        started,
                        tokens_in,
                        tokens_out,
                    )
                if attempt == 0:
                    logger.info(f"mockbox: AI answer rejected, asking once more: {errors}")
                    asked = (
                        prompt
                        + "\n\nYour previous answer was:\n"
                        + completion.raw[:4000]
                        + "\n\n"
                        + repair_prompt(errors)
                    )
            self.breaker.failure()
            out = self._error(
                502,
                "AI_GENERATION_FAILED",
                "The AI provider's answer was invalid twice; it was not used.",
                errors=errors,
            )
            return self._finish(out, "invalid", started, tokens_in, tokens_out)
        except self._timeouts:
            self.breaker.failure()
            timeout = self.settings.provider.timeout
            out = self._error(
                504,
                "AI_TIMEOUT",
                f"The AI provider {self.name} did not answer within {timeout:g} s.",
            )
            return self._finish(out, "timeout", started, tokens_in, tokens_out)
        except self._errors as e:
            self.breaker.failure()
            out = self._error(
                502, "AI_PROVIDER_ERROR", f"The AI provider {self.name} failed: {self._describe(e)}"
            )
            return self._finish(out, "error", started, tokens_in, tokens_out)

    def _improve_offline(
        self, mock: dict[str, Any], instruction: str, siblings: list[Mock], started: float
    ) -> Outcome[Improvement]:
        try:
            improvement = improve_offline(mock, instruction, siblings)
        except NotApplicable as e:
            out: Outcome[Improvement] = self._error(422, "AI_CANNOT_APPLY", f"{e}.")
            return self._finish(out, "no_knowledge", started, 0, 0)
        if improvement is None:
            out = self._error(
                422,
                "AI_INSTRUCTION_NOT_UNDERSTOOD",
                "The offline provider understands these instructions: "
                f"{understood_instructions()}. For anything else set ai.provider to an LLM.",
            )
            return self._finish(out, "no_knowledge", started, 0, 0)
        return self._finish(Outcome(improvement, 200), "ok", started, 0, 0)

    def _offline(
        self, req: GenerationRequest, index: MockIndex, seed: int, started: float
    ) -> Outcome[AIAnswer]:
        answer = self.offline.generate(req, index, seed)
        if answer is None:
            out: Outcome[AIAnswer] = self._error(
                501,
                "AI_NO_KNOWLEDGE",
                f"The offline provider knows nothing about {req.method} {req.url}: no mock, "
                "recording or imported schema of this host resembles it. Add a mock, record a "
                "session, import an OpenAPI document, give a schema hint (fields such as "
                '"id, name, email"), or set ai.provider to an LLM.',
            )
            return self._finish(out, "no_knowledge", started, 0, 0)
        return self._finish(Outcome(answer, 200), "ok", started, 0, 0)

    def _error[T](self, status: int, code: str, message: str, **extra: Any) -> Outcome[T]:
        return Outcome(None, status, {"error": code, "message": message, **extra})

    def _describe(self, e: BaseException) -> str:
        """The provider's error for the client and the log: its first line, with the key and
        anything shaped like one taken out (providers quote the key they were sent)."""
        status = getattr(e, "status_code", None)
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        text = self._scrubbed(first[:10_000])[:200]
        return f"HTTP {status}: {text}" if status else text

    def _traceback(self) -> str:
        return self._scrubbed(traceback.format_exc())

    def _scrubbed(self, text: str) -> str:
        return scrub_credentials(text, [self.provider.credential] if self.provider else [])

    def _finish[T](
        self, out: Outcome[T], outcome: str, started: float, tin: int, tout: int
    ) -> Outcome[T]:
        out.tokens_in, out.tokens_out = tin, tout
        self._record(out, outcome, started)
        return out

    def _record(self, out: Outcome[Any], outcome: str, started: float) -> None:
        out.provider, out.model, out.outcome = self.name, self.model, outcome
        out.latency = time.monotonic() - started
        out.cost = self.usage.record(
            self.name, self.model, outcome, out.tokens_in, out.tokens_out, out.latency
        )
