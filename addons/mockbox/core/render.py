"""Turning a matched mock into the bytes of an answer, within one time and size budget for all
its templates.

On the event loop an answer's templates get a short slice (LOOP_SLICE_SECONDS): nearly every
answer renders well within it. One that does not is rendered again, from the start, in a worker
thread with the rest of its budget, so no client waits for another's slow template. The redo
gives the same answer: the request data and the time are fixed when the answer starts, Faker
is seeded from the request, and a sequence step was picked before. There is one such thread
(more would not run Python faster, only crowd the loop), a render still queued when its
deadline passes fails at once, and a mock that was slow last time skips the slice.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import sys
import time
import uuid
import weakref
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from . import sandbox
from .model import ResponseSpec
from .request import RequestView
from .sandbox import SliceExpired, end_answer, start_answer
from .templating import AnswerInputs, TemplateEngine, TemplateError

LOOP_SLICE_SECONDS = 0.005  # an answer's templates on the event loop before they move to a thread
RENDER_THREADS = 1  # Python runs one thread at a time anyway: more would only crowd the loop
# How often a busy render thread offers the GIL to the event loop (Python's default, 5 ms,
# let a canary request wait 60 ms and more: each wake-up of the loop waited for the GIL).
SWITCH_INTERVAL = 0.0005
_workers = ThreadPoolExecutor(RENDER_THREADS, thread_name_prefix="mockbox-render")


class _SlowSpecs:
    """Answers whose last render ran past its slice: they go to the worker thread at once, so
    a slow mock asked for again and again costs the event loop nothing after the first time.
    Kept by identity (hashing a spec costs more than the lookup is worth), weakly (a reload
    drops the old specs)."""

    def __init__(self) -> None:
        self._refs: dict[int, weakref.ref[ResponseSpec]] = {}

    def __contains__(self, spec: ResponseSpec) -> bool:
        ref = self._refs.get(id(spec))
        return ref is not None and ref() is spec

    def add(self, spec: ResponseSpec) -> None:
        key = id(spec)
        self._refs[key] = weakref.ref(spec, lambda _ref: self._refs.pop(key, None))

    def discard(self, spec: ResponseSpec) -> None:
        if spec in self:
            del self._refs[id(spec)]


_slow = _SlowSpecs()


@dataclass(frozen=True, slots=True)
class Rendered:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _json_default(value: Any) -> Any:
    """A value JSON has no type for: a date, time, decimal or UUID as its text, a set as a
    list, anything else (a function, an object) as null, never as its repr."""
    if isinstance(value, datetime.date | datetime.time | datetime.timedelta | Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, set | frozenset):
        return list(value)
    return None


def encode_body(value: Any) -> bytes:
    """Text is sent as UTF-8; anything else (mapping, list, number...) as JSON. Lone
    surrogates from the request (non-UTF-8 bytes decoded with surrogateescape, or `\\ud800`
    in a JSON body) cannot be UTF-8: text gets "?", JSON a `\\udcff` escape."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "replace")
    text = json.dumps(value, ensure_ascii=False, default=_json_default)
    return text.encode("utf-8", "backslashreplace")


def render(
    spec: ResponseSpec,
    engine: TemplateEngine,
    request: RequestView,
    params: Mapping[str, str],
    seconds: float | None = None,
) -> Rendered:
    """Render `spec` for `request` in this thread with `seconds` (default: the answer's whole
    budget); raises TemplateError when a template fails. For tools off the request path (HAR
    export) and, with a few milliseconds, for example bodies read on the event loop."""
    inputs = engine.inputs(spec.needs, request, params) if spec.templated else None
    deadline = None if seconds is None else time.monotonic() + seconds
    return _render(spec, engine, inputs, deadline, None)


async def render_answer(
    spec: ResponseSpec,
    engine: TemplateEngine,
    request: RequestView,
    params: Mapping[str, str],
) -> Rendered:
    """Render `spec` for `request` without holding the event loop longer than a slice (raises
    TemplateError when a template fails or runs out of budget)."""
    if not spec.templated:
        return _render(spec, engine, None, None, None)
    inputs = engine.inputs(spec.needs, request, params)
    deadline = time.monotonic() + sandbox.MAX_RENDER_SECONDS
    if spec not in _slow:
        try:
            return _render(spec, engine, inputs, deadline, LOOP_SLICE_SECONDS)
        except SliceExpired:
            _slow.add(spec)
    if sys.getswitchinterval() > SWITCH_INTERVAL:
        sys.setswitchinterval(SWITCH_INTERVAL)
    loop = asyncio.get_running_loop()
    rendered, seconds = await loop.run_in_executor(
        _workers, _timed_render, spec, engine, inputs, deadline
    )
    if seconds < LOOP_SLICE_SECONDS / 2:
        _slow.discard(spec)  # quick again: back to a slice on the loop next time
    return rendered


def _timed_render(
    spec: ResponseSpec, engine: TemplateEngine, inputs: AnswerInputs, deadline: float
) -> tuple[Rendered, float]:
    """The whole render in a worker thread, and how long it took."""
    started = time.monotonic()
    return _render(spec, engine, inputs, deadline, None), time.monotonic() - started


def _render(
    spec: ResponseSpec,
    engine: TemplateEngine,
    inputs: AnswerInputs | None,
    deadline: float | None,
    slice_seconds: float | None,
) -> Rendered:
    """One render of the whole answer under one budget: until `deadline` (default: the full
    budget from now), giving way after `slice_seconds` when set."""
    if deadline is not None and time.monotonic() > deadline:
        raise TemplateError(f"no render thread was free within {sandbox.MAX_RENDER_SECONDS} s")
    budget = start_answer(deadline, slice_seconds)
    try:
        ctx = engine.new_context(inputs) if inputs is not None else None
        headers = [(name, _text(value.render(ctx))) for name, value in spec.headers]
        body = (
            encode_body(spec.body.render(ctx)) if spec.body is not None else spec.body_bytes or b""
        )
    finally:
        end_answer(budget)
    # content_type is known only when there is a body; an explicit header wins.
    if spec.content_type and not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", spec.content_type))
    return Rendered(spec.status, headers, body)


def _text(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, list | tuple | set | frozenset | dict):
        text = json.dumps(value, ensure_ascii=False, default=_json_default)
    else:
        text = "" if value is None else str(value)
    # A rendered header value must stay one line, whatever the template produced.
    return text.replace("\r", " ").replace("\n", " ")
