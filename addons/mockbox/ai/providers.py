"""LLM providers behind one small interface: OpenAI, Anthropic, any OpenAI-compatible server.

Keys come only from the environment (OPENAI_API_KEY, ANTHROPIC_API_KEY). Timeouts and retries
are set here, short and bounded: the SDKs' defaults (minutes, several retries) would stall a proxy.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Protocol

from ..core.ai_answer import ANSWER_SCHEMA, parse_answer

# The SDKs are imported when a provider is made: they take seconds to import, and the default
# (offline) provider and most commands never need them.

DEFAULT_MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-haiku-4-5",
    "openai-compatible": "llama3.1",
}
PROVIDERS = ("offline", "openai", "anthropic", "openai-compatible")


def sdk_errors() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """(timeouts, all provider errors): "the provider failed", not "the answer was bad".
    A 200 whose body is not JSON (say, a gateway's HTML page) fails inside the SDK with a
    JSONDecodeError, not an SDK error: the provider failed all the same."""
    import anthropic
    import openai

    return (
        (openai.APITimeoutError, anthropic.APITimeoutError),
        (openai.OpenAIError, anthropic.AnthropicError, json.JSONDecodeError),
    )


class ProviderConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Tool:
    """The shape the model must answer in: a JSON Schema, named for tool-style APIs."""

    name: str
    description: str
    schema: dict[str, Any]


ANSWER_TOOL = Tool("http_response", "Send the HTTP response for the request.", ANSWER_SCHEMA)


@dataclass(frozen=True, slots=True)
class Completion:
    data: Any  # the parsed answer (raises ValueError in parse_answer when not JSON)
    raw: str
    tokens_in: int
    tokens_out: int


class Provider(Protocol):
    name: str
    model: str
    credential: str  # the key it sends: never in an answer or a log line, whatever errors say

    async def complete(self, system: str, prompt: str, tool: Tool = ANSWER_TOOL) -> Completion: ...


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    provider: str
    model: str
    base_url: str
    temperature: float
    max_tokens: int
    timeout: float
    max_retries: int
    max_answer_bytes: int = 1 << 20  # read from the provider at most, compressed or not


class OpenAIProvider:
    """OpenAI's chat completions with a JSON-schema structured output (also any compatible
    server: Ollama, vLLM, llama.cpp; those get `max_tokens`, OpenAI `max_completion_tokens`)."""

    def __init__(self, s: ProviderSettings) -> None:
        import openai

        from .transport import capped_client

        self.name, self.model, self.settings = s.provider, s.model, s
        key = os.environ.get("OPENAI_API_KEY", "")
        if s.provider == "openai" and not key:
            raise ProviderConfigError("ai.provider is openai but OPENAI_API_KEY is not set")
        self.credential = key
        self.client = openai.AsyncOpenAI(
            api_key=key or "not-needed",  # local compatible servers usually want none
            base_url=s.base_url or None,
            timeout=s.timeout,
            max_retries=s.max_retries,
            http_client=capped_client(
                openai.DefaultAsyncHttpxClient,
                s.base_url or "https://api.openai.com/v1",
                s.max_answer_bytes,
            ),
        )
        self.client.chat.completions  # noqa: B018  # imported now, not on a request's time

    async def complete(self, system: str, prompt: str, tool: Tool = ANSWER_TOOL) -> Completion:
        limit = "max_completion_tokens" if self.name == "openai" else "max_tokens"
        response = await self.client.chat.completions.create(  # type: ignore[call-overload]
            model=self.model,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": prompt}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": tool.name, "schema": tool.schema, "strict": False},
            },
            temperature=self.settings.temperature,
            **{limit: self.settings.max_tokens},
        )
        text = response.choices[0].message.content or "" if response.choices else ""
        usage = response.usage
        return Completion(
            _parsed_or_text(text),
            text,
            usage.prompt_tokens if usage else 0,
            usage.completion_tokens if usage else 0,
        )


class AnthropicProvider:
    """Anthropic's messages API, with the answer forced through a tool's input schema."""

    def __init__(self, s: ProviderSettings) -> None:
        import anthropic

        from .transport import capped_client

        self.name, self.model, self.settings = s.provider, s.model, s
        key = os.environ.get("ANTHROPIC_API_KEY", "")
        if not key:
            raise ProviderConfigError("ai.provider is anthropic but ANTHROPIC_API_KEY is not set")
        self.credential = key
        self.client = anthropic.AsyncAnthropic(
            api_key=key,
            base_url=s.base_url or None,
            timeout=s.timeout,
            max_retries=s.max_retries,
            http_client=capped_client(
                anthropic.DefaultAsyncHttpxClient,
                s.base_url or "https://api.anthropic.com",
                s.max_answer_bytes,
            ),
        )
        self.client.messages  # noqa: B018  # imported now, not on a request's time

    async def complete(self, system: str, prompt: str, tool: Tool = ANSWER_TOOL) -> Completion:
        message = await self.client.messages.create(
            model=self.model,
            system=system,
            max_tokens=self.settings.max_tokens,  # this SDK's messages API takes no temperature
            messages=[{"role": "user", "content": prompt}],
            tools=[
                {"name": tool.name, "description": tool.description, "input_schema": tool.schema}
            ],
            tool_choice={"type": "tool", "name": tool.name},
        )
        data: Any = None
        raw = ""
        for block in message.content:
            if block.type == "tool_use":
                data = block.input
                raw = str(block.input)
                break
            if block.type == "text":
                raw += block.text
        if data is None:
            data = _parsed_or_text(raw)
        return Completion(data, raw, message.usage.input_tokens, message.usage.output_tokens)


def _parsed_or_text(text: str) -> Any:
    try:
        return parse_answer(text)
    except ValueError:
        return text  # the checker reports "not a JSON object", which the repair prompt names


def make_provider(s: ProviderSettings) -> Provider:
    if s.provider in ("openai", "openai-compatible"):
        if s.provider == "openai-compatible" and not s.base_url:
            raise ProviderConfigError("ai.provider openai-compatible needs ai.base_url")
        return OpenAIProvider(s)
    if s.provider == "anthropic":
        return AnthropicProvider(s)
    raise ProviderConfigError(
        f"unknown ai.provider {s.provider!r}; choose one of {', '.join(PROVIDERS)}"
    )
