"""`mockbox generate`: one mock from a method, a URL and a description, from the command line.

The same Synthesizer as the proxy (grounded in the mocks folder's nearest examples); the answer
is printed as a mock and can be appended to a file with --save.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from .ai.providers import ProviderConfigError
from .ai.service import AISettings, Outcome, Synthesizer
from .ai.usage import UsageBook
from .core.ai_answer import AIAnswer
from .core.ai_prompt import GenerationRequest, nearest_examples
from .core.config import Config
from .core.library import MockLibrary
from .core.mockwriter import append_mock, dump_mocks, mock_from_answer
from .core.templating import TemplateEngine


@dataclass(frozen=True, slots=True)
class GenerateArgs:
    method: str
    url: str
    description: str = ""
    schema_hint: str = ""
    complexity: str = "medium"
    body: Any = None


async def generate(
    config: Config, mocks: Path, args: GenerateArgs
) -> tuple[GenerationRequest, Outcome[AIAnswer]]:
    locale = config.get("templating", "faker_locale")
    engine = TemplateEngine(locale)
    library = MockLibrary(mocks, engine)
    library.refresh()
    settings = AISettings.from_config(config.get("ai"), locale)
    synth = Synthesizer(settings, engine, UsageBook(CollectorRegistry(), settings.prices))
    greq = GenerationRequest(
        args.method.upper(),
        args.url,
        body=args.body,
        description=args.description,
        schema_hint=args.schema_hint,
        complexity=args.complexity,
    )
    greq.examples = nearest_examples(
        library.index.mocks,
        greq.host,
        greq.method,
        greq.segments,
        int(config.get("ai", "examples")),
        int(config.get("ai", "example_chars")),
    )
    return greq, await synth.generate(greq, library.index, greq.seed())


def run(config: Config, mocks: Path, args: GenerateArgs, save: Path | None) -> int:
    try:
        greq, outcome = asyncio.run(generate(config, mocks, args))
    except ProviderConfigError as e:
        print(f"mockbox: {e}", file=sys.stderr)
        return 2
    if outcome.answer is None:
        print(f"mockbox: {json.dumps(outcome.error, indent=2)}", file=sys.stderr)
        return 1
    mock = mock_from_answer(greq, outcome.answer)
    print(dump_mocks([mock]), end="")
    note = f"{outcome.provider}/{outcome.model}"
    if outcome.tokens_in or outcome.tokens_out:
        note += f", {outcome.tokens_in}+{outcome.tokens_out} tokens, ~${outcome.cost:.4f}"
    print(f"# {outcome.answer.explanation} ({note})", file=sys.stderr)
    if save is not None:
        append_mock(save, mock)
        print(f"# saved to {save}", file=sys.stderr)
    return 0
