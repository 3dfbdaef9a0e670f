"""Regular expressions written by users (mock matchers, JSONPath `=~`, OpenAPI `pattern`).

They run on RE2, whose matching time is linear in the input: no pattern and no request can
make it backtrack for seconds, as `^(a+)+$` does with Python's `re`. RE2 lacks the features
that need backtracking (backreferences, lookaround...); a pattern that uses one is refused
when its mock loads, with the feature named and the RE2 way to write it. Beyond that the
dialect is RE2's: `\\d`, `\\w`, `\\s` and `\\b` are ASCII (`\\pL` is any letter) and `$`
matches only at the very end (Python's `$` also matches before a final newline).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

MAX_PATTERN_CHARS = 4096
# RE2's own bound on one compiled pattern (program and DFA cache); its default.
MAX_MEMORY_BYTES = 8 << 20


class PatternError(ValueError):
    """A pattern RE2 cannot run, with what to write instead."""


class UserPattern:
    """A compiled user pattern; `search` says whether it matches anywhere in a text."""

    __slots__ = ("_regex", "text")

    def __init__(self, text: str, regex: Any) -> None:
        self.text = text
        self._regex = regex

    def search(self, value: str) -> bool:
        # Bytes in, bytes pattern: the str API also maps every offset back to characters.
        # surrogatepass: a lone surrogate (JSON allows "\ud800") must not raise.
        return self._regex.search(value.encode("utf-8", "surrogatepass")) is not None

    def __repr__(self) -> str:
        return f"UserPattern({self.text!r})"


def _options() -> Any:
    options = re2.Options()
    options.never_capture = True  # only "does it match" is asked: the fastest engines apply
    options.log_errors = False  # the error is reported to the user, not to stderr
    options.max_mem = MAX_MEMORY_BYTES
    return options


_OPTIONS = _options()


@lru_cache(maxsize=1024)
def compile_pattern(text: str) -> UserPattern:
    """The RE2 form of `text`; PatternError says which feature RE2 lacks and what to write.
    Cached: a schema's patterns are compiled again at every validation."""
    return _compile(text)


def check_pattern(text: str) -> None:
    """Raise PatternError unless RE2 can run `text`; uncached, for text from requests."""
    _compile(text)


def _compile(text: str) -> UserPattern:
    if len(text) > MAX_PATTERN_CHARS:
        raise PatternError(f"the pattern is longer than {MAX_PATTERN_CHARS} characters")
    if _has_empty_minimum(text):
        raise PatternError(
            "`{,n}` means 0 to n repetitions in Python but literal text in RE2: write `{0,n}`"
        )
    try:
        regex = re2.compile(text.encode("utf-8", "surrogatepass"), _OPTIONS)
    except re2.error as e:
        raise PatternError(explain(text, _error_text(e))) from None
    return UserPattern(text, regex)


def _error_text(error: re2.error) -> str:
    detail = error.args[0] if error.args else ""
    return detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)


_OP = "invalid perl operator: "
_ESC = "invalid escape sequence: "
_NO_BACKTRACKING = "not needed with RE2, which never backtracks"
# The start of RE2's error → the feature it names and the RE2 way to write it.
_ADVICE = {
    _OP + "(?=": "lookahead `(?=...)` is not supported by RE2: match the following text "
    "itself, or add a second matcher",
    _OP + "(?!": "negative lookahead `(?!...)` is not supported by RE2: match what is allowed "
    "instead (a class such as `[^x]`, or alternatives)",
    _OP + "(?<=": "lookbehind `(?<=...)` is not supported by RE2: match the preceding text itself",
    _OP + "(?<!": "negative lookbehind `(?<!...)` is not supported by RE2: match what is "
    "allowed instead",
    _OP + "(?>": f"atomic groups `(?>...)` are {_NO_BACKTRACKING}: write `(?:...)`",
    _OP + "(?(": "conditionals `(?(1)...|...)` are not supported by RE2: write the "
    "alternatives out with `|`",
    _OP + "(?#": "comments `(?#...)` are not supported by RE2: remove them",
    _OP + "(?x": "verbose mode `(?x)` is not supported by RE2: remove the flag, the spaces "
    "and the comments",
    _OP + "(?a": "the ASCII flag `(?a)` is not needed with RE2, whose `\\d`, `\\w` and `\\s` "
    "are ASCII: remove it",
    _OP + "(?u": "the Unicode flag `(?u)` is not supported by RE2: remove it; `\\pL` is any "
    "letter, `\\pN` any digit",
    _ESC + "\\Z": "`\\Z` is written `\\z` in RE2 (end of text)",
    _ESC + "\\u": "`\\uXXXX` is written `\\x{XXXX}` in RE2",
    _ESC + "\\U": "`\\UXXXXXXXX` is written `\\x{XXXXXXXX}` in RE2",
    _ESC + "\\N": "`\\N{NAME}` is not supported by RE2: write the character or `\\x{XXXX}`",
    "invalid repetition size: ": "repetition counts are limited to 1000 in RE2, nested ones "
    "multiplied (`(a{100}){100}` is 10000): use `+` or `*`, or smaller counts",
    "pattern too large": f"the pattern compiles to more than RE2's {MAX_MEMORY_BYTES >> 20} MiB: "
    "make it smaller (fewer or smaller repetition counts)",
}
_BACKREFERENCES = (
    "backreferences (`\\1`, `(?P=name)`) are not supported by RE2: repeat the subpattern "
    "itself, or test the exact value with `equals`"
)


def explain(text: str, error: str) -> str:
    """A message for `text` that RE2 refused with `error`: the feature and the RE2 way."""
    for start, advice in _ADVICE.items():
        if error.startswith(start):
            return advice
    if error.startswith("bad repetition operator: ") and error.endswith("+"):
        return (
            f"possessive quantifiers (`*+`, `++`, `?+`, `{{n}}+`) are {_NO_BACKTRACKING}: "
            "drop the last `+`"
        )
    if (error.startswith(_ESC) and error[-1:] in "123456789") or (
        error == _OP + "(?P" and "(?P=" in text
    ):
        return _BACKREFERENCES
    return error  # RE2's own words: a syntax error


def _has_empty_minimum(text: str) -> bool:
    """Whether `text` has `{,n}` outside a character class (escapes skipped)."""
    i, in_class = 0, False
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if text[i + 1 : i + 2] == "^":
                i += 1
            if text[i + 1 : i + 2] == "]":  # `[]...]` and `[^]...]`: a literal `]` first
                i += 1
        elif c == "{" and text[i + 1 : i + 2] == ",":
            end = text.find("}", i)
            if end > i + 2 and text[i + 2 : end].isdigit():
                return True
        i += 1
    return False
