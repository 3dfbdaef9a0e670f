"""Jinja's sandbox with resource bounds, so a template cannot hang the proxy or eat its memory.

Jinja's SandboxedEnvironment keeps templates away from Python internals, but not from
`'a' * 10**9`, `'%999999999d' % 1`, `'x' | center(10**9)`, `lipsum(10**6)` or loops nested
until the heat death of the universe: each of those froze the proxy's event loop or allocated
gigabytes. Here every size-producing operation is checked before it runs, and every loop
iteration (every 256th), call, attribute lookup and output chunk (every 64th) checks a per-render
deadline.
"""

from __future__ import annotations

import inspect
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar, Token
from itertools import chain
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import SandboxedEnvironment, safe_range
from jinja2.utils import generate_lorem_ipsum

MAX_SIZE = 8 * 1024 * 1024  # longest string or sequence a template may build (8 Mi items)
MAX_INT_BITS = 100_000  # largest integer a template may compute (~30,000 digits)
MAX_WIDTH = 100_000  # widest padding a format spec or filter may ask for
MAX_RENDER_SECONDS = 2.0  # one template's render, all loops and calls included
_CHECK_EVERY = 256  # loop iterations between deadline checks
_LOOP_FILTER = "mockbox_loop_guard"
_CONCAT_FILTER = "mockbox_concat"
# Parameters that size what a call builds (Faker's pystr(max_chars=...), paragraphs(nb=...)...).
_COUNT_PARAMS = frozenset(
    {
        "nb", "nb_elements", "nb_words", "nb_sentences", "nb_chars", "max_nb_chars", "min_chars",
        "max_chars", "length", "num_rows", "num_files", "uncompressed_size", "min_file_size",
        "size", "digits", "left_digits", "right_digits", "text_length", "variable_nb_elements",
    }
)  # fmt: skip

_deadline: ContextVar[float | None] = ContextVar("mockbox_template_deadline", default=None)
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?")
_DIGITS = re.compile(r"\d+")
_PADDING_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


class TemplateLimitError(SecurityError):
    """A template went past one of the bounds above."""


def start_budget() -> Token[float | None]:
    """Give the render that starts now MAX_RENDER_SECONDS; pass the token to end_budget after.
    (A plain function pair, not a context manager: this runs for every template rendered.)"""
    return _deadline.set(time.monotonic() + MAX_RENDER_SECONDS)


def end_budget(token: Token[float | None]) -> None:
    _deadline.reset(token)


def check_deadline() -> None:
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() > deadline:
        raise TemplateLimitError(f"the template ran longer than {MAX_RENDER_SECONDS} s")


def bounded_concat(chunks: Iterable[str]) -> str:
    """The output of a render as one string, stopped when it grows past MAX_SIZE or (checked
    every 64 chunks) the deadline passes."""
    parts: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_SIZE:
            raise TemplateLimitError(f"the template's output is longer than {MAX_SIZE} characters")
        parts.append(chunk)
        if len(parts) & 63 == 0:
            check_deadline()
    return "".join(parts)


def _check_size(size: int, what: str) -> None:
    if size > MAX_SIZE:
        raise TemplateLimitError(f"{what} would hold {size} items, more than {MAX_SIZE}")


def _check_width(number: str | int) -> None:
    if int(number) > MAX_WIDTH:
        raise TemplateLimitError(f"a format width or precision above {MAX_WIDTH}")


def _check_percent(fmt: str, args: Any) -> None:
    """Refuse `'%999999999d' % 1` (and `%*d` with a huge width): padding is allocated first."""
    for m in _PERCENT_SPEC.finditer(fmt):
        for number in m.groups():
            if number == "*":
                _check_ints(args if isinstance(args, tuple) else (args,))
            elif number:
                _check_width(number)


def _check_format(fmt: str, args: Iterable[Any]) -> None:
    """Refuse `'{:999999999}'.format(1)`; a nested `{:{}}` width comes from the arguments."""
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError:
        return  # the call itself reports the bad format
    for _, _, spec, _ in fields:
        for number in _DIGITS.findall(spec or ""):
            _check_width(number)
        if spec and "{" in spec:
            _check_ints(args)


def _check_ints(values: Iterable[Any]) -> None:
    for value in values:
        if _is_int(value) and abs(value) > MAX_WIDTH:
            raise TemplateLimitError(f"{value} is above {MAX_WIDTH} here")


def _check_counts(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a huge value for a parameter that says how much to build (`nb`, `max_chars`...);
    other big numbers (`random_int(0, 10**12)`, a timestamp) pass."""
    if not any(_is_int(v) and abs(v) > MAX_WIDTH for v in (*args, *kwargs.values())):
        return
    try:
        bound = inspect.signature(func).bind_partial(*args, **kwargs)
    except (TypeError, ValueError):
        return  # the call itself reports wrong arguments; builtins may have no signature
    for name, value in bound.arguments.items():
        if name in _COUNT_PARAMS and _is_int(value) and abs(value) > MAX_WIDTH:
            raise TemplateLimitError(f"{name}={value} is above {MAX_WIDTH}")


def _concat(parts: list[Any]) -> str:
    """The `~` operator, with its result bounded (doubling a string in a loop eats memory)."""
    texts = [str(p) for p in parts]
    _check_size(sum(len(t) for t in texts), "a `~` concatenation")
    return "".join(texts)


def _joined_size(items: Iterable[Any], separator: Any) -> int:
    seq = list(items)
    return sum(len(str(i)) for i in seq) + len(str(separator)) * max(len(seq) - 1, 0)


def _check_str_method(method: Any, args: tuple[Any, ...]) -> None:
    """`'x'.center(10**9)`, `s.replace('a', big)`, `big.join(many)`: checked before they run."""
    text, name = method.__self__, method.__name__
    if name in _PADDING_METHODS:
        _check_ints(args[:1])
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and args[0]:
        grow = max(len(str(args[1])) - len(args[0]), 0)
        _check_size(len(text) + text.count(args[0]) * grow, "str.replace()")
    elif name == "join" and args and isinstance(args[0], (list, tuple)):
        _check_size(_joined_size(args[0], text), "str.join()")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _sized(value: Any) -> bool:
    return isinstance(value, (str, bytes, list, tuple))


class _GuardedRange:
    """`range(...)` for templates: Jinja's safe_range (at most 100,000 items), and iteration
    checks the deadline (nested loops multiply)."""

    def __init__(self, *args: int) -> None:
        self._range = safe_range(*args)

    def __iter__(self) -> Iterator[int]:
        return _guarded(self._range)

    def __len__(self) -> int:
        return len(self._range)

    def __getitem__(self, index: Any) -> Any:
        return self._range[index]

    def __contains__(self, item: object) -> bool:
        return item in self._range

    def __repr__(self) -> str:
        return repr(self._range)


def _guarded(iterable: Iterable[Any]) -> Iterator[Any]:
    for i, item in enumerate(iterable):
        if i % _CHECK_EVERY == 0:
            check_deadline()
        yield item


def _bounded_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a Jinja filter whose integer arguments are widths or counts (center, indent...)."""

    def bounded(*args: Any, **kwargs: Any) -> Any:
        _check_ints((*args[1:], *kwargs.values()))
        if name == "format" and args and isinstance(args[0], str):
            _check_percent(args[0], args[1:])
        elif name == "join" and len(args) >= 2 and isinstance(args[1], (list, tuple)):
            _check_size(_joined_size(args[1], args[2] if len(args) > 2 else ""), "join")
        elif name == "replace" and len(args) >= 4 and isinstance(args[2], str) and args[2]:
            text = str(args[1])
            grow = max(len(str(args[3])) - len(args[2]), 0)
            _check_size(len(text) + text.count(args[2]) * grow, "replace")
        return original(*args, **kwargs)

    bounded.__dict__.update(original.__dict__)  # keep pass_context / pass_environment marks
    return bounded


def _bounded_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> Any:
    if n > 100 or max > 1000 or min > max:
        raise TemplateLimitError("lipsum: at most 100 paragraphs of 1000 words")
    return generate_lorem_ipsum(n, html, min, max)


def shown(value: Any) -> Any:
    """What a template's value shows as: a function or method shows as nothing, since its
    repr (`<built-in method title of str object at 0x7f...>`) tells memory addresses."""
    if callable(value) and not isinstance(value, Undefined):  # Undefined is callable, too
        return None
    return value


class BoundedSandbox(SandboxedEnvironment):
    """SandboxedEnvironment plus size checks on operators, filters and formats, and a deadline
    checked by loops (every for loop's iterable is wrapped), calls and attribute lookups."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, finalize=_finalize, **kwargs)
        self.globals["range"] = _GuardedRange
        self.globals["lipsum"] = _bounded_lipsum
        for name in (
            "center", "indent", "wordwrap", "truncate", "format", "batch", "slice", "join",
            "replace",
        ):  # fmt: skip
            self.filters[name] = _bounded_filter(name, self.filters[name])
        self.filters[_LOOP_FILTER] = _guarded
        self.filters[_CONCAT_FILTER] = _concat

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        return self.guard(super()._parse(source, name, filename))

    def guard(self, tree: nodes.Template) -> nodes.Template:
        """Route every loop's iterable through the deadline check and every `~` through the
        size check (Jinja offers no hook for either). One pass; a node is changed before its
        children are visited, so nested loops and concatenations are guarded too."""
        for node in chain([tree], tree.find_all(nodes.Node)):  # lazy: edits are seen below
            if isinstance(node, nodes.For):
                node.iter = _filtered(node.iter, _LOOP_FILTER)
            for name in node.fields:
                value = getattr(node, name, None)
                if isinstance(value, nodes.Concat):
                    setattr(node, name, _guarded_concat(value))
                elif isinstance(value, list) and any(isinstance(v, nodes.Concat) for v in value):
                    setattr(node, name, [_guarded_concat(v) for v in value])
        return tree

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        check_deadline()
        if operator == "*":
            if _sized(left) and _is_int(right):
                _check_size(len(left) * right, "a repeated sequence")
            elif _sized(right) and _is_int(left):
                _check_size(len(right) * left, "a repeated sequence")
            elif _is_int(left) and _is_int(right):
                _check_bits(left.bit_length() + right.bit_length())
        elif operator == "**" and _is_int(left) and _is_int(right) and abs(left) > 1:
            if right > 0:
                _check_bits(right * left.bit_length())
        elif operator == "+" and _sized(left) and _sized(right):
            _check_size(len(left) + len(right), "a joined sequence")
        elif operator == "%" and isinstance(left, str):
            _check_percent(left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        check_deadline()
        if isinstance(getattr(__obj, "__self__", None), str) and callable(__obj):
            _check_str_method(__obj, args)
        else:
            _check_counts(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        check_deadline()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        check_deadline()
        return super().getitem(obj, argument)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt = str(value.__self__)

        def checked(*args: Any, **kwargs: Any) -> str:
            _check_format(fmt, (*args, *kwargs.values()))
            return wrapped(*args, **kwargs)

        return checked


def _check_bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise TemplateLimitError(f"an integer of about {bits} bits, more than {MAX_INT_BITS}")


def _filtered(node: nodes.Node, name: str) -> nodes.Filter:
    guarded = nodes.Filter(node, name, [], [], None, None, lineno=node.lineno or 1)
    guarded.set_lineno(node.lineno or 1)  # fills in the new nodes' lines, keeps the others
    return guarded


def _guarded_concat(node: nodes.Node) -> nodes.Node:
    if isinstance(node, nodes.Concat):
        return _filtered(nodes.List(node.nodes, lineno=node.lineno), _CONCAT_FILTER)
    return node


def _finalize(value: Any) -> Any:
    """Text output: a function shows as nothing (see `shown`)."""
    return value if shown(value) is value else ""
