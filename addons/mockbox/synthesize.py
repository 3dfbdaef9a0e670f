"""The Synthesize addon: answers requests no mock matched, when `unmatched` is `ai`."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from pathlib import Path
from typing import Any

from mitmproxy import exceptions, http
from mitmproxy.addonmanager import Loader

from .ai.providers import ProviderConfigError
from .ai.resources import SessionResources
from .ai.service import AISettings, Outcome, Synthesizer
from .ai.stores import StateStore
from .ai.usage import Budget, UsageBook
from .core.ai_answer import AIAnswer
from .core.ai_prompt import GenerationRequest, nearest_examples, operation_schema
from .core.config import ConfigError
from .core.mockedit import dump_mock
from .core.mockfile import check_mock_text
from .core.mockwriter import append_mock, host_file_name, mock_from_answer
from .core.redaction import Policy
from .core.render import Rendered, encode_body
from .core.request import RequestView
from .core.templating import TemplateEngine
from .flows import answer, answer_json, request_view
from .metrics import Metrics
from .mocks import UNMATCHED, MockServer
from .settings import OptionalStr, Settings
from .state import SharedState, StateError

logger = logging.getLogger(__name__)

PERSIST_HEADER = "x-mockbox-persist"
SESSION_HEADER = "x-mockbox-session"
GENERATED_FOLDER = "generated"
_YES = ("1", "true", "yes")


class Synthesize:
    def __init__(
        self, settings: Settings, metrics: Metrics, mocks: MockServer, state: SharedState
    ) -> None:
        self.settings, self.metrics, self.mocks = settings, metrics, mocks
        self.synth: Synthesizer | None = None
        self.usage: UsageBook | None = None
        self.store = StateStore(state)
        self.budget: Budget | None = None
        self.resources = SessionResources(self.store)
        self.policy = Policy.default()  # what a prompt may show of a request
        self._told_persist_off = False
        self._persisting = threading.Lock()  # one writer of generated/ at a time

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "mockbox_ai_provider",
            OptionalStr,
            None,
            "AI provider for unmatched requests: offline, openai, anthropic, openai-compatible "
            "(MOCKBOX_AI_PROVIDER; default offline).",
        )

    def configure(self, updated: set[str]) -> None:
        if not updated & {"mockbox_ai_provider", "mockbox_config"}:
            return
        try:
            self.policy = Policy.from_config(self.settings.config.get("redact"))
        except ConfigError as e:
            raise exceptions.OptionsError(str(e)) from e
        ai = dict(self.settings.config.get("ai"))
        ai["provider"] = self.settings.value("mockbox_ai_provider", "ai", "provider")
        settings = AISettings.from_config(
            ai, self.settings.config.get("templating", "faker_locale")
        )
        if self.usage is None:
            self.usage = UsageBook(self.metrics.registry, settings.prices)
        self.usage.prices = settings.prices
        try:
            self.synth = Synthesizer(settings, TemplateEngine(settings.faker_locale), self.usage)
        except ProviderConfigError as e:
            raise exceptions.OptionsError(str(e)) from e
        self.budget = Budget(settings.budget, self.store)

    @property
    def ai_config(self) -> dict[str, Any]:
        return dict(self.settings.config.get("ai"))

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or not flow.live or not flow.metadata.get(UNMATCHED):
            return
        library, synth, budget = self.mocks.library, self.synth, self.budget
        if self.mocks.unmatched != "ai" or synth is None or library is None or budget is None:
            return
        view = request_view(flow)
        client = view.client or "anonymous"
        session = view.headers.get(SESSION_HEADER) or client
        stateful = bool(self.ai_config["stateful"])
        if stateful:
            try:
                body = view.json if view.body else None
                kept = await self.resources.answer(
                    session, view.method, view.host, view.segments, body
                )
            except StateError as e:
                logger.warning(f"mockbox: AI session resources unavailable ({e})")
                kept, stateful = None, False
            if kept is not None:  # never cached: the next write changes it
                self._send(
                    flow, kept, {"X-MockBox-AI-Provider": "state", "Cache-Control": "no-store"}
                )
                return
        refusal = await self.refusal(client)
        if refusal is not None:
            answer_json(flow, 429, refusal, "ai")
            assert flow.response is not None
            flow.response.headers["Retry-After"] = str(refusal["retry_after"])
            return
        greq = self.generation_request(view)
        outcome = await synth.generate(greq, library.index, greq.seed())
        await self.spend(client, outcome)
        if outcome.answer is not None and stateful:
            try:
                outcome.answer = await self.resources.remember(
                    session, view.method, view.host, view.segments, outcome.answer
                )
            except StateError as e:
                logger.warning(f"mockbox: AI session resources unavailable ({e})")
        if outcome.answer is None:
            self._send_error(flow, outcome)
            return
        extra = _outcome_headers(outcome)
        ttl = int(self.ai_config["cache_ttl"])
        if view.method in ("GET", "HEAD") and "cache-control" not in {
            h.lower() for h in outcome.answer.headers
        }:
            # The same request gets the same answer for this long: the cache layer keeps it.
            extra["Cache-Control"] = f"max-age={ttl}" if ttl > 0 else "no-store"
        self._send(flow, outcome.answer, extra)
        if self.ai_config["persist"] or self._persist_asked(view):
            # Reading, checking and rewriting a YAML file: off the event loop other clients use.
            await asyncio.to_thread(self.persist, greq, outcome.answer)

    def _persist_asked(self, view: RequestView) -> bool:
        """`X-MockBox-Persist: true`, honoured only when `ai.persist_header` allows it: a
        header any proxy client can send must not write mock files unless the operator says."""
        if view.headers.get(PERSIST_HEADER, "").lower() not in _YES:
            return False
        if self.ai_config["persist_header"]:
            return True
        if not self._told_persist_off:
            self._told_persist_off = True
            logger.info(
                f"mockbox: ignoring {PERSIST_HEADER}: ai.persist_header is false "
                "(set it to true to let proxy clients keep AI answers as mocks)"
            )
        return False

    async def refusal(self, client: str) -> dict[str, Any] | None:
        """The 429 answer when `client`'s daily AI budget is spent (proxy and editor alike)."""
        assert self.budget is not None
        try:
            spent = await self.budget.exceeded(client)
        except StateError as e:  # an outage must not stop synthesis: budgets resume with it
            logger.warning(f"mockbox: AI budgets unavailable ({e}); not enforced meanwhile")
            return None
        if spent is None:
            return None
        return {
            "error": "AI_BUDGET_EXCEEDED",
            "message": f"{spent} are spent; the budget resets at midnight UTC.",
            "retry_after": Budget.seconds_to_midnight(),
        }

    async def spend(self, client: str, outcome: Outcome[Any]) -> None:
        assert self.budget is not None
        try:
            await self.budget.spend(client, outcome.tokens_in + outcome.tokens_out, outcome.cost)
        except StateError as e:
            logger.warning(f"mockbox: AI budgets unavailable ({e}); this call is not counted")

    def generation_request(self, view: RequestView) -> GenerationRequest:
        return self.grounded(GenerationRequest.from_view(view, self.policy))

    def grounded(self, greq: GenerationRequest) -> GenerationRequest:
        """`greq` with the nearest mocks of its host as examples for the model."""
        assert self.mocks.library is not None
        greq.body_schema = operation_schema(
            self.mocks.library.index.mocks, greq.host, greq.method, greq.segments
        )
        greq.examples = nearest_examples(
            self.mocks.library.index.mocks,
            greq.host,
            greq.method,
            greq.segments,
            int(self.ai_config["examples"]),
            int(self.ai_config["example_chars"]),
        )
        return greq

    def persist(self, greq: GenerationRequest, result: AIAnswer) -> Path | None:
        """Keep the answer as an ordinary mock file: generated/<host>.yaml in the mocks folder."""
        library = self.mocks.library
        if library is None:
            return None
        target = library.root / GENERATED_FOLDER / host_file_name(greq.host)
        mock = mock_from_answer(greq, result)
        # Checked as the loader will read it: one odd request must not break the whole file.
        problems = check_mock_text(dump_mock(mock), target, library.root, library.engine).problems
        if "host" not in mock["request"] or problems:
            why = problems[0].message if problems else f"the host {greq.host!r} is not plain"
            logger.warning(
                f"mockbox: not keeping the AI answer for {greq.method} {greq.url}: {why}"
            )
            return None
        header = "# Answers synthesized by MockBox's AI; review, edit and keep what is good.\n"
        try:
            with self._persisting:
                append_mock(target, mock, header)
        except OSError as e:
            logger.warning(f"mockbox: could not keep the AI answer in {target}: {e}")
            return None
        logger.info(f"mockbox: kept the AI answer for {greq.method} {greq.url} in {target}")
        return target

    def _send(self, flow: http.HTTPFlow, result: AIAnswer, extra: dict[str, str]) -> None:
        headers = [*result.headers.items(), *extra.items()]
        if result.explanation:
            headers.append(("X-MockBox-AI-Explanation", _header_text(result.explanation)))
        body = b"" if result.body is None else encode_body(result.body)
        answer(flow, Rendered(result.status, headers, body), "ai")

    def _send_error(self, flow: http.HTTPFlow, outcome: Outcome[AIAnswer]) -> None:
        assert outcome.error is not None
        answer_json(flow, outcome.status, outcome.error, "ai")
        assert flow.response is not None
        flow.response.headers.update(outcome.headers)
        for name, value in _outcome_headers(outcome).items():
            flow.response.headers[name] = value


def _outcome_headers(outcome: Outcome[Any]) -> dict[str, str]:
    return {"X-MockBox-AI-Provider": outcome.provider, "X-MockBox-AI-Model": outcome.model}


def _header_text(text: str) -> str:
    return json.dumps(text[:300])[1:-1]  # one line, printable
