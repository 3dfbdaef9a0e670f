"""Jinja's sandbox with resource bounds per answer, so a mock cannot hang the proxy or eat its
memory, and with only plain data and a few plain functions reachable from a template.

Jinja's SandboxedEnvironment keeps templates away from attributes starting with `_`, but not
from `'a' * 10**9`, `'%999999999d' % 1`, `''.replace('', big)`, `lipsum(10**6)` or loops
nested until the heat death of the universe. Here every size-producing operation is checked
before it runs, every value turned into text is weighed first (and must be data: a function or
object would show as a repr with a memory address), and loops, calls, attribute lookups, filter
inputs and output chunks check the answer's deadline.

The bounds belong to one answer (all its header and body strings together): an AnswerBudget
holds the deadline, the output still allowed and, on the event loop, the end of the slice
after which the render gives way (SliceExpired) so it can be redone in a worker thread.
"""

from __future__ import annotations

import datetime
import re
import string
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from decimal import Decimal
from itertools import chain
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import SandboxedEnvironment, safe_range
from jinja2.utils import Cycler, Joiner, Namespace, generate_lorem_ipsum

MAX_SIZE = 8 * 1024 * 1024  # longest string a template may build (8 Mi characters)
# Longest list a template may build, or a filter may go through: sorting this many strings
# is one call into C of about 40 ms (it holds the GIL, on the loop or in a thread alike).
MAX_ITEMS = 128 * 1024
MAX_OUTPUT = 8 * 1024 * 1024  # characters one answer's templates may produce, all together
MAX_INT_BITS = 100_000  # largest integer a template may compute (~30,000 digits)
MAX_WIDTH = 100_000  # widest padding a format spec or filter may ask for
MAX_RENDER_SECONDS = 2.0  # one answer's templates, all strings, loops and calls included
_CHECK_EVERY = 256  # loop iterations between deadline checks
_LOOP_FILTER = "mockbox_loop_guard"
_CONCAT_FILTER = "mockbox_concat"
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?")
_DIGITS = re.compile(r"\d+")
_PADDING_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_SCALARS = (
    str,
    int,
    float,
    type(None),
    datetime.date,
    datetime.time,
    datetime.timedelta,
    Decimal,
    uuid.UUID,
)
_DATA = (*_SCALARS, Undefined)
# Filters that go through their input item by item: the input is fed to them through a guard
# that checks the deadline and counts items (else `'x' * 8_000_000 | unique` runs unchecked).
_ITERATING_FILTERS = frozenset(
    {
        "batch", "groupby", "join", "list", "map", "max", "min", "reject", "rejectattr",
        "select", "selectattr", "slice", "sort", "sum", "unique",
    }
)  # fmt: skip
# Filters that take any object and do not turn it into text; every other filter's input is
# weighed and must be plain data.
_OBJECT_FILTERS = _ITERATING_FILTERS | {
    "attr", "count", "d", "default", "first", "last", "length", "random", "reverse",
}  # fmt: skip
# Filters whose integer arguments are widths or counts.
_WIDTH_FILTERS = frozenset({"batch", "center", "indent", "slice", "tojson", "truncate", "wordwrap"})


class TemplateLimitError(SecurityError):
    """A template went past one of the bounds above."""


class SliceExpired(Exception):
    """The render used up its slice of the event loop; the answer is rendered again, from the
    start, in a worker thread with the rest of its budget."""


@dataclass(slots=True)
class AnswerBudget:
    deadline: float  # time.monotonic() after which the answer fails
    slice_end: float  # after which a render on the event loop gives way (= deadline elsewhere)
    output_left: int  # characters the answer may still produce


_budget: ContextVar[AnswerBudget | None] = ContextVar("mockbox_answer_budget", default=None)


def start_answer(
    deadline: float | None = None, slice_seconds: float | None = None
) -> Token[AnswerBudget | None]:
    """Open the budget of one answer in this thread (or context): until `deadline` (default:
    MAX_RENDER_SECONDS from now), giving way after `slice_seconds` when set. Pass the token to
    end_answer after."""
    now = time.monotonic()
    end = now + MAX_RENDER_SECONDS if deadline is None else deadline
    slice_end = end if slice_seconds is None else min(end, now + slice_seconds)
    return _budget.set(AnswerBudget(end, slice_end, MAX_OUTPUT))


def end_answer(token: Token[AnswerBudget | None]) -> None:
    _budget.reset(token)


def check_deadline() -> None:
    budget = _budget.get()
    if budget is not None and time.monotonic() > budget.slice_end:
        if budget.slice_end < budget.deadline and time.monotonic() <= budget.deadline:
            raise SliceExpired()
        raise TemplateLimitError(f"the answer's templates ran longer than {MAX_RENDER_SECONDS} s")


def charge_output(size: int) -> None:
    """Count `size` characters against the answer's output."""
    budget = _budget.get()
    if budget is None:
        return
    budget.output_left -= size
    if budget.output_left < 0:
        raise TemplateLimitError(
            f"the answer's templates produce more than {MAX_OUTPUT} characters"
        )


def bounded_concat(chunks: Iterable[str]) -> str:
    """The output of a render as one string, counted against the answer's output as it grows,
    with the deadline checked every 64 chunks. Every 4096 chunks are joined into one, so that
    neither the final join nor freeing a failed render's output is one long stretch of C code
    (a million small chunks took 40 ms, holding the GIL)."""
    parts: list[str] = []
    pending = 0
    for chunk in chunks:
        charge_output(len(chunk))
        parts.append(chunk)
        pending += 1
        if pending & 63 == 0:
            check_deadline()
            if pending == 4096:
                parts[-pending:] = ["".join(parts[-pending:])]
                pending = 0
    return "".join(parts)


def is_data(value: Any) -> bool:
    """Text, numbers, dates, UUIDs, booleans, None, Undefined (no container)."""
    return isinstance(value, _DATA)


def weigh(value: Any, limit: int, *, strict: bool) -> int:
    """About how many characters `value` shows as, counted only until `limit` is passed (so a
    list holding the same big string a million times costs nothing to weigh). With `strict`,
    anything but data and lists, tuples, sets and dicts of data is refused: its text would be
    a repr, with a memory address; otherwise it counts as nothing (it shows as nothing)."""
    if isinstance(value, str):  # the usual case, without the walk
        return len(value) + 2
    total, stack, seen = 0, [value], 0
    while stack and total <= limit:
        item = stack.pop()
        seen += 1
        if seen % 1024 == 0:
            check_deadline()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, int):
            total += item.bit_length() * 3 // 10 + 2
        elif is_data(item):
            total += 40
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            stack.extend(item)
        elif isinstance(item, dict | Mapping):
            total += 2 + 4 * len(item)
            stack.extend(chain(item.keys(), item.values()))
        elif strict:
            what = "a function" if callable(item) else f"a {type(item).__name__} object"
            raise TemplateLimitError(f"{what} cannot be turned into text")
    return total


def _check_weight(value: Any, what: str, limit: int = MAX_SIZE, *, strict: bool = True) -> None:
    if weigh(value, limit, strict=strict) > limit:
        raise TemplateLimitError(f"{what} would be longer than {limit} characters")


def _check_size(size: int, what: str, limit: int = MAX_SIZE) -> None:
    if size > limit:
        raise TemplateLimitError(f"{what} would hold {size} items, more than {limit}")


def _check_width(number: str | int) -> None:
    if int(number) > MAX_WIDTH:
        raise TemplateLimitError(f"a format width or precision above {MAX_WIDTH}")


def _check_percent(fmt: str, args: Any) -> None:
    """Refuse `'%999999999d' % 1` (and `%*d` with a huge width): padding is allocated first."""
    _check_weight(args, "a % format's arguments")
    for m in _PERCENT_SPEC.finditer(fmt):
        for number in m.groups():
            if number == "*":
                _check_ints(args if isinstance(args, tuple) else (args,))
            elif number:
                _check_width(number)


def _check_format(fmt: str, args: tuple[Any, ...]) -> None:
    """Refuse `'{:999999999}'.format(1)`; a nested `{:{}}` width comes from the arguments."""
    _check_weight(args, "a format's arguments")
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


def _concat(parts: list[Any]) -> str:
    """The `~` operator, with its result bounded (doubling a string in a loop eats memory)."""
    _check_weight(parts, "a `~` concatenation")
    return "".join(str(p) for p in parts)


def _check_replace(text: str, old: Any, new: Any, count: Any = -1) -> None:
    """`s.replace(old, new)` builds len(s) + n * (len(new) - len(old)) characters, where an
    empty `old` matches len(s) + 1 times."""
    if not (isinstance(old, str) and isinstance(new, str)):
        return
    hits = text.count(old) if old else len(text) + 1
    if _is_int(count) and count >= 0:
        hits = min(hits, count)
    _check_size(len(text) + hits * max(len(new) - len(old), 0), "replace()")


def _guarded_items(iterable: Iterable[Any], what: str) -> Iterator[Any]:
    """`iterable` item by item, with the deadline checked and at most MAX_ITEMS items."""
    for i, item in enumerate(iterable):
        if i % _CHECK_EVERY == 0:
            check_deadline()
            if i >= MAX_ITEMS:
                raise TemplateLimitError(f"{what} goes through more than {MAX_ITEMS} items")
        yield item


def _joinable(separator: Any, items: Iterable[Any]) -> list[Any]:
    """The items of a join as a list (a generator too), weighed with the separators."""
    listed = list(_guarded_items(items, "join"))
    separators = len(str(separator)) * max(len(listed) - 1, 0)
    _check_size(separators, "the separators of join()")
    _check_weight(listed, "join()", MAX_SIZE - separators)
    return listed


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _sized(value: Any) -> bool:
    return isinstance(value, (str, bytes, list, tuple))


def _limit_of(value: Any) -> int:
    return MAX_SIZE if isinstance(value, (str, bytes)) else MAX_ITEMS


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


class _Cycler(Cycler):
    def __repr__(self) -> str:
        return "cycler"


class _Joiner(Joiner):
    def __repr__(self) -> str:
        return "joiner"


# The globals: plain functions, never a class (a class leads to its methods and bases).
def _range(*args: int) -> _GuardedRange:
    return _GuardedRange(*args)


def _dict(*args: Any, **kwargs: Any) -> dict[Any, Any]:
    return dict(*args, **kwargs)


def _cycler(*items: Any) -> Cycler:
    return _Cycler(*items)


def _joiner(sep: str = ", ") -> Joiner:
    return _Joiner(sep)


def _namespace(*args: Any, **kwargs: Any) -> Namespace:
    return Namespace(*args, **kwargs)


def _bounded_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> Any:
    if n > 100 or max > 1000 or min > max:
        raise TemplateLimitError("lipsum: at most 100 paragraphs of 1000 words")
    return generate_lorem_ipsum(n, html, min, max)


GLOBALS: Mapping[str, Callable[..., Any]] = {
    "range": _range,
    "dict": _dict,
    "lipsum": _bounded_lipsum,
    "cycler": _cycler,
    "joiner": _joiner,
    "namespace": _namespace,
}


def _bounded_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a Jinja filter: its input weighed (it becomes text) or guarded (it is gone
    through item by item), its width and count arguments checked."""
    at = 1 if getattr(original, "jinja_pass_arg", None) is not None else 0

    def bounded(*args: Any, **kwargs: Any) -> Any:
        check_deadline()
        if len(args) <= at:
            return original(*args, **kwargs)
        value, rest = args[at], args[at + 1 :]
        if name in _ITERATING_FILTERS and not isinstance(value, Undefined):
            args = (*args[:at], _guarded_items(value, name), *rest)
        elif name not in _OBJECT_FILTERS:
            _check_weight(value, f"the input of {name}")
            if isinstance(value, Mapping):  # dictsort, items, xmlattr, urlencode go through it
                _check_size(len(value), f"the input of {name}", MAX_ITEMS)
        if name in _WIDTH_FILTERS:
            _check_ints((*rest, *kwargs.values()))
        if name == "format" and isinstance(value, str):
            _check_percent(value, rest)
        elif name == "join":
            separator = rest[0] if rest else kwargs.get("d", "")
            args = (*args[:at], _joinable(separator, args[at]), *rest)
        elif name == "replace" and isinstance(value, str) and len(rest) >= 2:
            _check_replace(value, *rest[:3])
        elif name == "sum":
            start = kwargs.get("start", rest[1] if len(rest) > 1 else 0)
            if not isinstance(start, int | float):  # sum(lists) copies quadratically, in C
                raise TemplateLimitError("sum adds numbers (start must be a number)")
        return original(*args, **kwargs)

    bounded.__dict__.update(getattr(original, "__dict__", {}))  # keep pass_context marks
    return bounded


def shown(value: Any) -> Any:
    """What a template's value shows as: a function or an object that is not data shows as
    nothing, since its repr (`<built-in method title of str object at 0x7f...>`) tells memory
    addresses."""
    if is_data(value) or isinstance(value, list | tuple | set | frozenset | dict):
        return value
    return None


def _item_first(obj: Any, attribute: str) -> bool:
    """Whether `obj.attribute` means the item: for a mapping that has the key, data wins over
    a method name (`body.items` is the body's `items`, not dict.items)."""
    try:
        return (type(obj) is dict or isinstance(obj, Mapping)) and attribute in obj
    except TypeError:
        return False


class BoundedSandbox(SandboxedEnvironment):
    """SandboxedEnvironment plus size checks on operators, filters and formats, and a deadline
    checked by loops (every for loop's iterable is wrapped), calls and attribute lookups."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, finalize=_finalize, **kwargs)
        self.globals.clear()
        self.globals.update(GLOBALS)
        for name in list(self.filters):
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
                _check_size(len(left) * right, "a repeated sequence", _limit_of(left))
                if right > 0 and not isinstance(left, (str, bytes)):  # `[big] * n` aliases big
                    _check_weight(left, "a repeated sequence", MAX_SIZE // right, strict=False)
            elif _sized(right) and _is_int(left):
                return self.call_binop(context, operator, right, left)
            elif _is_int(left) and _is_int(right):
                _check_bits(left.bit_length() + right.bit_length())
        elif operator == "**" and _is_int(left) and _is_int(right) and abs(left) > 1:
            if right > 0:
                _check_bits(right * left.bit_length())
        elif operator == "+" and _sized(left) and _sized(right):
            _check_size(len(left) + len(right), "a joined sequence", _limit_of(left))
        elif operator == "%" and isinstance(left, str):
            _check_percent(left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        check_deadline()
        text = getattr(__obj, "__self__", None)
        if isinstance(text, str) and callable(__obj):
            name = __obj.__name__
            if name == "join" and args:
                args = (_joinable(text, args[0]), *args[1:])
            if name in _PADDING_METHODS:
                _check_ints(args[:1])
            elif name == "replace" and len(args) >= 2:
                _check_replace(text, *args[:3])
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        check_deadline()
        if _item_first(obj, attribute):
            return obj[attribute]
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
    """Text output: a function or object shows as nothing (see `shown`); a list or mapping is
    weighed against the answer's output before it is turned into text, and must hold data."""
    if is_data(value):
        return value
    if isinstance(value, list | tuple | set | frozenset | dict):
        budget = _budget.get()
        limit = MAX_OUTPUT if budget is None else max(budget.output_left, 0)
        _check_weight(value, "a value shown as text", limit)
        return value
    return ""
