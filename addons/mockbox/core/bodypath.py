"""JSONPath for body matchers, with a bound on the work one request body can cause.

Expressions are parsed once when the mock loads (jsonpath-ng's extended syntax). Then:
- features whose cost is not bounded by the body are refused: arithmetic (`$.a * $.b` builds a
  string as long as the request says), `sub()` and `str()` (outputs larger than the body),
  comparing two queries (`@.a == @.b` compares every pair), `&` (not implemented upstream);
- `=~` runs on RE2 (see userregex), not Python's `re`;
- every place jsonpath-ng loops over values (descendants, filter candidates, children, sorting)
  goes through a checkpoint that counts a step: one evaluation may take MAX_STEPS steps, past
  which the matcher fails (TooMuchWork says why), and the checkpoint keeps the request's Work
  bound (time, event-loop slice).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jsonpath_ng import (
    Child,
    DatumInContext,
    Descendants,
    Fields,
    Index,
    JSONPath,
    Parent,
    Root,
    Slice,
    This,
    Where,
    WhereNot,
)
from jsonpath_ng.exceptions import JSONPathError
from jsonpath_ng.ext.arithmetic import Operation
from jsonpath_ng.ext.filter import And, Expression, Filter, Or
from jsonpath_ng.ext.iterable import Keys, Len, Path, SortedThis
from jsonpath_ng.ext.parser import parse
from jsonpath_ng.ext.string import Split, Str, Sub
from jsonpath_ng.jsonpath import Wildcard, _Intersect, _Union

from .userregex import PatternError, UserPattern, compile_pattern
from .work import MatchTimeout, OffLoop, Work

MAX_EXPRESSION_CHARS = 512
MAX_DEPTH = 64  # levels of the parsed expression: evaluating it recurses once per level
MAX_STEPS = 100_000  # values one evaluation may visit (about 0.5 s at worst)


class BodyPathError(ValueError):
    """A JSONPath that cannot be used in a matcher."""


class TooMuchWork(Exception):
    """The body needs more work than a matcher may do; the message says why."""


@dataclass(slots=True)
class _Evaluation:
    work: Work
    steps: int = 0

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise TooMuchWork(f"the JSONPath visited more than {MAX_STEPS} values")
        self.work.tick()


_evaluation: ContextVar[_Evaluation] = ContextVar("mockbox_jsonpath_evaluation")


class _Checkpoint(JSONPath):
    """Wraps a node that jsonpath-ng evaluates once per value of a loop: each call is a step."""

    def __init__(self, inner: JSONPath) -> None:
        self.inner = inner

    def find(self, datum: Any) -> list[DatumInContext]:
        _evaluation.get().step()
        result: list[DatumInContext] = self.inner.find(datum)
        return result

    def __str__(self) -> str:
        return str(self.inner)

    def __repr__(self) -> str:
        return repr(self.inner)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Checkpoint) and self.inner == other.inner

    def __hash__(self) -> int:
        return hash(self.inner)


class _RegexTest(Expression):
    """`target =~ "pattern"` with the pattern on RE2 (jsonpath-ng's own uses Python's `re`)."""

    def __init__(self, target: JSONPath, pattern: UserPattern) -> None:
        super().__init__(target, "=~", pattern.text)
        self.pattern = pattern

    def find(self, datum: Any) -> list[DatumInContext]:
        found = self.target.find(DatumInContext.wrap(datum))
        return [d for d in found if isinstance(d.value, str) and self.pattern.search(d.value)]


@dataclass(frozen=True, slots=True)
class BodyPath:
    """A checked JSONPath; `find` gives the values it selects in a parsed JSON body."""

    text: str
    path: JSONPath

    def find(self, doc: Any, work: Work) -> list[Any]:
        token = _evaluation.set(_Evaluation(work))
        try:
            return [m.value for m in self.path.find(doc)]
        except (TooMuchWork, MatchTimeout, OffLoop):
            raise
        except RecursionError:
            raise TooMuchWork("the JSONPath nests too deeply for this body") from None
        except Exception as e:  # jsonpath-ng on odd data (`parent` of the root...): no match
            raise TooMuchWork(f"the JSONPath failed on this body: {type(e).__name__}") from None
        finally:
            _evaluation.reset(token)


def compile_path(text: str) -> BodyPath:
    """Parse and check `text`; BodyPathError says what is refused and why."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise BodyPathError(f"the JSONPath is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        parsed = parse(text)
    except (JSONPathError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise BodyPathError(f"bad JSONPath {text!r}: {e}") from e
    except RecursionError:
        raise BodyPathError(f"bad JSONPath {text[:80]!r}...: nested too deeply") from None
    return BodyPath(text, _checked(parsed, 0))


_REFUSED: dict[type, str] = {
    Operation: "arithmetic (`+ - * /`) is not supported in matchers: its result can be far "
    "larger than the body; compare the value itself",
    Sub: "`sub()` is not supported in matchers: test the value with `regex` instead",
    Str: "`str()` is not supported in matchers: values are compared as text already",
    _Intersect: "`&` (intersection) is not implemented by jsonpath-ng",
}
# Nodes that only look at the value in hand (their cost is one value's size at most).
_LEAVES = (Root, This, Fields, Index, Slice, Wildcard, Parent, Len, Keys, Path, Split)


def _checked(node: JSONPath, depth: int) -> JSONPath:
    """`node` with loops checkpointed and `=~` on RE2; BodyPathError for what is refused."""
    if depth > MAX_DEPTH:
        raise BodyPathError(f"the JSONPath nests more than {MAX_DEPTH} levels")
    down = depth + 1
    if type(node) in _REFUSED:
        raise BodyPathError(_REFUSED[type(node)])
    if isinstance(node, SortedThis):
        node.expressions = [
            (_Checkpoint(_checked(f, down)), reverse) for f, reverse in node.expressions or []
        ]
        return node
    if isinstance(node, _LEAVES):
        return node
    if isinstance(node, (Child, Descendants, Where, WhereNot)):  # right: once per left value
        node.left = _checked(node.left, down)
        node.right = _Checkpoint(_checked(node.right, down))
        return node
    if isinstance(node, _Union):
        node.left, node.right = _checked(node.left, down), _checked(node.right, down)
        return node
    if isinstance(node, Filter):
        node.expressions = [_Checkpoint(_checked(e, down)) for e in node.expressions]
        return node
    if isinstance(node, (And, Or)):
        node.operands = [_Checkpoint(_checked(e, down)) for e in node.operands]
        return node
    if isinstance(node, Expression):
        return _expression(node, down)
    raise BodyPathError(f"{type(node).__name__} ({node}) is not supported in matchers")


def _expression(node: Expression, depth: int) -> JSONPath:
    if isinstance(node.value, JSONPath):
        raise BodyPathError(
            f"comparing two queries ({node}) is not supported in matchers (it compares every "
            "pair of values): compare the path with a literal value"
        )
    node.target = _checked(node.target, depth)
    if node.op != "=~":
        return node
    try:
        return _RegexTest(node.target, compile_pattern(str(node.value)))
    except PatternError as e:
        raise BodyPathError(f"bad regex {node.value!r} in {node}: {e}") from e
