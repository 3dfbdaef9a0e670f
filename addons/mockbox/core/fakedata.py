"""`fake` in templates: Faker's data methods, and nothing else of Faker.

The Faker object itself is a way out of the sandbox (`fake.get_formatter('__class__')` hands
out an unguarded getattr) and a way around every size bound (`fake.json(num_rows=100000)`
ran 39 s). Templates get a `FakeData` instead: only provider methods that return data, each
with bounded arguments (no callables, classes or formatter names; every argument that sizes the
output capped so that one call stays in the tens of milliseconds) and a result checked to be
plain data.
"""

from __future__ import annotations

import datetime
import inspect
import threading
import uuid
from collections.abc import Mapping
from decimal import Decimal
from functools import cache
from typing import Any

from faker import Faker

# The most an argument that sizes the output may ask for. Each cap keeps one call near 10 ms
# or less on a loaded 2-core machine (measured: texts(nb_texts=10, max_nb_chars=10000) 26 ms,
# json(num_rows=50) 23 ms, pystruct(count=20) 9 ms, paragraphs(nb=100) 2 ms); several
# parameters multiply (texts), hence the smaller caps on the outer count.
CAPS: Mapping[str, int] = {
    "nb": 100,
    "nb_words": 1_000,
    "nb_sentences": 100,
    "nb_elements": 100,
    "nb_texts": 10,
    "max_nb_chars": 10_000,
    "min_chars": 10_000,
    "max_chars": 10_000,
    "length": 10_000,
    "num_rows": 50,
    "count": 20,
    "digits": 1_000,
    "left_digits": 1_000,
    "right_digits": 1_000,
    "levels": 100,
    "deep": 100,
    "depth": 100,
    "indent": 16,
}
MAX_TEXT_ARG = 1_000  # characters of one string argument (bothify's text, date's pattern...)
MAX_ARG_ITEMS = 1_000  # items in all container arguments of one call together

# Provider methods left out: those that take classes or callables, build bytes (files,
# archives, images) or objects, or reach Faker's generator by a formatter name given as text
# (pystr_format and dsv parse `{{name}}` tokens; value_types names a formatter).
EXCLUDED = frozenset(
    {
        "binary", "dsv", "enum", "image", "json_bytes", "pyobject", "pystr_format",
        "pytimezone", "tar", "time_series", "xml", "zip",
    }
)  # fmt: skip
# Parameters refused everywhere: each names formatters or classes (json's data_columns runs
# `generator.format(name, **kwargs)` for any name, value_types picks `py<name>` methods).
REFUSED_PARAMS = frozenset({"data_columns", "cls", "value_types", "allowed_types", "cast_to"})

_SCALARS = (
    str,
    int,
    float,
    bool,
    type(None),
    datetime.date,
    datetime.time,
    datetime.timedelta,
    Decimal,
    uuid.UUID,
)


class FakeDataError(ValueError):
    """A `fake.*` call with an argument out of bounds, or a result that is not plain data."""


def is_plain_data(value: Any, limit: int = 1_000_000) -> bool:
    """Whether `value` is text, a number, a date or time, a UUID, or lists, tuples, sets and
    dicts of those (at most `limit` items in all)."""
    stack, seen = [value], 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > limit:
            return False
        if isinstance(item, _SCALARS):
            continue
        if isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            return False
    return True


class _Method:
    """One allowed provider method: its parameters and which of them are capped."""

    __slots__ = ("caps", "name", "signature")

    def __init__(self, name: str, signature: inspect.Signature) -> None:
        self.name, self.signature = name, signature
        self.caps = {p: CAPS[p] for p in signature.parameters if p in CAPS}

    def check(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as e:
            raise FakeDataError(f"fake.{self.name}: {e}") from None
        items = 0
        for name, value in bound.arguments.items():
            if name in REFUSED_PARAMS:
                raise FakeDataError(f"fake.{self.name}: {name} is not available in templates")
            cap = self.caps.get(name)
            if cap is not None and isinstance(value, int) and value > cap:
                raise FakeDataError(f"fake.{self.name}: {name}={value} is above {cap}")
            items += _argument_items(self.name, name, value)
            if items > MAX_ARG_ITEMS:
                raise FakeDataError(f"fake.{self.name}: more than {MAX_ARG_ITEMS} items given")


def _argument_items(method: str, name: str, value: Any) -> int:
    """How many items an argument holds; refuses anything but plain data and long text."""
    if isinstance(value, str):
        if len(value) > MAX_TEXT_ARG:
            raise FakeDataError(f"fake.{method}: {name} is longer than {MAX_TEXT_ARG} characters")
        return 0
    if isinstance(value, _SCALARS):
        return 0
    if isinstance(value, list | tuple | set | frozenset | dict):
        if not is_plain_data(value, MAX_ARG_ITEMS):
            raise FakeDataError(f"fake.{method}: {name} must be plain data, at most "
                                f"{MAX_ARG_ITEMS} items")  # fmt: skip
        texts = value.values() if isinstance(value, dict) else value
        for text in texts:
            if isinstance(text, str) and len(text) > MAX_TEXT_ARG:
                raise FakeDataError(f"fake.{method}: an item of {name} is too long")
        return len(value)
    raise FakeDataError(f"fake.{method}: {name} must be plain data, not {type(value).__name__}")


@cache
def methods(locale: str) -> Mapping[str, _Method]:
    """The allowed provider methods of `locale`, looked up once: every public method of
    Faker's providers but those EXCLUDED."""
    faker = Faker(locale)
    found: dict[str, _Method] = {}
    for provider in faker.providers:
        for name in dir(provider):
            if name.startswith("_") or name in EXCLUDED or name in found:
                continue
            method = getattr(provider, name, None)
            if inspect.ismethod(method):
                found[name] = _Method(name, inspect.signature(method))
    return found


_local = threading.local()


def warm(locale: str) -> None:
    """Build the allowed methods and this thread's Faker now (together ~50 ms), not within
    the first answer's budget."""
    methods(locale)
    _thread_faker(locale)


def _thread_faker(locale: str) -> Faker:
    """A Faker per thread and locale: an answer redone in a worker thread must not share the
    random state of one being rendered on the event loop."""
    fakers: dict[str, Faker] | None = getattr(_local, "fakers", None)
    if fakers is None:
        fakers = _local.fakers = {}
    faker = fakers.get(locale)
    if faker is None:
        faker = fakers[locale] = Faker(locale)
    return faker


class FakeCall:
    """`fake.name`: calls the provider method after checking its arguments, and checks that
    what it returns is plain data. Shows as its name, never as a repr with an address."""

    __slots__ = ("_faker", "_method")

    def __init__(self, faker: Faker, method: _Method) -> None:
        self._faker, self._method = faker, method

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:  # the defaults are within the caps
            self._method.check(args, kwargs)
        result = getattr(self._faker, self._method.name)(*args, **kwargs)
        if not is_plain_data(result):
            raise FakeDataError(f"fake.{self._method.name} returned {type(result).__name__}, "
                                "not plain data")  # fmt: skip
        return result

    def __repr__(self) -> str:
        return f"fake.{self._method.name}"


class FakeData:
    """The `fake` variable: attribute access to the allowed methods only, bound to this
    thread's Faker seeded for one answer (same request, same data)."""

    __slots__ = ("_faker", "_methods")

    def __init__(self, locale: str, seed: int) -> None:
        self._methods = methods(locale)
        self._faker = _thread_faker(locale)
        self._faker.seed_instance(seed)

    def __getattr__(self, name: str) -> FakeCall:
        method = None if name.startswith("_") else self._methods.get(name)
        if method is None:
            raise AttributeError(name)
        return FakeCall(self._faker, method)

    def __repr__(self) -> str:
        return "fake"

    __str__ = __repr__
