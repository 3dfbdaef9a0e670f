"""Secrets in what MockBox writes or shows, in one place for every path network data leaves
by: recordings, HAR export, the traffic API, prompts for an LLM, provider errors, log lines.

`Policy` says which names carry a secret (the `redact:` configuration); `Redactor` walks
headers, URLs, query strings, JSON, form and multipart bodies and free text with a policy,
replacing those values and remembering them so their copies elsewhere (an upstream echoing a
token) go too; `scrub_credentials` takes anything shaped like a key or token out of error text.
A Redis URL's password and an `Authorization` header are the same concern: `redact_url`.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit

from ahocorasick_rs import AhoCorasick, BytesAhoCorasick, MatchKind

from .config import ConfigError, defaults

# Shorter values are replaced where they are named, but not searched for elsewhere: replacing
# a password "demo" in every path and body of a recording would break it.
MIN_ECHO = 8
# JSON nested deeper than this is hostile, not an API: what lies below is replaced whole.
MAX_DEPTH = 100
_KNOWN_NAMES = 4096  # names whose answer a policy remembers

_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_SEPARATOR = re.compile(r"[^A-Za-z0-9]")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9_.+-]*")  # Bearer, Basic, AWS4-HMAC-SHA256...


def normalize(name: str) -> str:
    """One spelling for every casing and separator: apiKey, API-Key and api_key → api_key."""
    return "_".join(w.lower() for w in _WORDS.findall(name))


def _plain(name: str) -> str:
    """Lower case, words only where separators are: AuThOrIzAtIoN stays one word."""
    return "_".join(w for w in _SEPARATOR.split(name.lower()) if w)


def _forms(name: str) -> frozenset[str]:
    """The spellings a name is known by: header names come in any case, so camelCase words
    (apiKey) cannot be the only reading."""
    return frozenset({normalize(name), _plain(name)}) - {""}


def _entry_forms(entry: str) -> set[str]:
    """A configured name or pattern in both spellings, normalized around its `*`s; a
    separator next to a `*` stays (`*_key` wants a word `key`, `*key` also takes `monkey`)."""
    out = set()
    for spell in (normalize, _plain):
        pieces = []
        for piece in entry.split("*"):
            core = spell(piece)
            lead = "_" if core and _SEPARATOR.match(piece) else ""
            tail = "_" if core and _SEPARATOR.match(piece[-1:]) else ""
            pieces.append(lead + core + tail)
        out.add("*".join(pieces))
    return out - {""}


@dataclass(frozen=True, slots=True)
class _Names:
    """Normalized names: exact, `*suffix`, `*part*`, `prefix*`, and other shell patterns."""

    exact: frozenset[str]
    suffixes: tuple[str, ...]
    parts: tuple[str, ...]
    prefixes: tuple[str, ...]
    pattern: re.Pattern[str] | None

    @classmethod
    def of(cls, entries: Iterable[str]) -> _Names:
        forms = {form for entry in entries for form in _entry_forms(entry)}
        exact, suffixes, parts, prefixes, globs = set(), set(), set(), set(), set()
        for form in forms:
            inner = form.strip("*")
            if "*" not in form:
                exact.add(form)
            elif "*" in inner or "?" in form or "[" in form or not inner:
                globs.add(fnmatch.translate(form))
            elif form.startswith("*") and form.endswith("*"):
                parts.add(inner)
            elif form.startswith("*"):
                suffixes.add(inner)
            else:
                prefixes.add(inner)
        return cls(
            frozenset(exact),
            tuple(sorted(suffixes)),
            tuple(sorted(parts)),
            tuple(sorted(prefixes)),
            re.compile("|".join(sorted(globs))) if globs else None,
        )

    def match(self, forms: frozenset[str]) -> bool:
        if not self.exact.isdisjoint(forms):
            return True
        for form in forms:
            if form.endswith(self.suffixes) or form.startswith(self.prefixes):
                return True
            if any(part in form for part in self.parts):
                return True
            if self.pattern is not None and self.pattern.match(form):
                return True
        return False


@dataclass(frozen=True, slots=True)
class Policy:
    """Which names carry secrets, and what replaces their values."""

    names: _Names
    query_names: _Names
    keep: _Names
    placeholder: str = "REDACTED"
    # Answers by name: a JSON array repeats its keys thousands of times.
    _known: dict[tuple[str, bool], bool] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_config(cls, redact: Mapping[str, Any]) -> Policy:
        lists: dict[str, list[str]] = {}
        for key in ("names", "extra_names", "query_names", "keep"):
            value = redact[key]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"redact.{key} must be a list of names")
            lists[key] = value
        placeholder = str(redact["placeholder"])
        if not placeholder:
            raise ConfigError("redact.placeholder must not be empty")
        return cls(
            _Names.of([*lists["names"], *lists["extra_names"]]),
            _Names.of(lists["query_names"]),
            _Names.of(lists["keep"]),
            placeholder,
        )

    @staticmethod
    def default() -> Policy:
        """The shipped policy, for places without a configuration (a Redis URL in a log)."""
        return _default_policy()

    def is_secret(self, name: str, query: bool = False) -> bool:
        """True when `name` (a header, a field, a cookie; `query`: a query parameter) carries
        a secret."""
        known = self._known.get((name, query))
        if known is not None:
            return known
        forms = _forms(name[:200])
        secret = bool(forms) and not self.keep.match(forms)
        secret = secret and (self.names.match(forms) or (query and self.query_names.match(forms)))
        if len(self._known) >= _KNOWN_NAMES:
            self._known.clear()
        self._known[(name, query)] = secret
        return secret


@cache
def _default_policy() -> Policy:
    return Policy.from_config(defaults()["redact"])


# Free text: "name": "value" (JSON that could not be parsed: cut short, embedded in a page),
# name=value (a URL in a page or an error message), "Name: value" lines (headers quoted),
# <name>value</name> (XML, SOAP).
_TEXT_JSON_PAIR = re.compile(
    r"""(["'])([^"'\\\n]{1,100})\1(\s*:\s*)("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|[\w.+-]+)"""
)
_SAYS_NOTHING = frozenset({"true", "false", "null", "True", "False", "None"})
_TEXT_PARAM = re.compile(r"(?<![\w.\[\]%-])([\w.\[\]%-]{1,100})=([^&\s\"'<>;,]+)")
_TEXT_HEADER_LINE = re.compile(r"^([\w-]{1,100}):[ \t]*([^\r\n]+)", re.MULTILINE)
_TEXT_USERINFO = re.compile(r"//([^/\s:@]{0,100}):([^/\s@]{1,200})@")
_TEXT_ELEMENT = re.compile(r"<([A-Za-z_][\w.:-]{0,100})(\s[^<>]{0,1000})?>([^<]+)</\1\s*>")


class Secrets:
    """Secret values to take out wherever they show up (an upstream echoing a token, a page
    embedding it). One Aho-Corasick pass finds all of them, however many a recording has
    learned (a JSON list of users with their keys), longest first where they overlap."""

    def __init__(self, placeholder: str, values: Iterable[str] = ()) -> None:
        self.placeholder = placeholder
        self.values: set[str] = set()
        self._text: AhoCorasick | None = None
        self._bytes: BytesAhoCorasick | None = None
        self.add(values)

    def add(self, values: Iterable[str]) -> bool:
        """Add the values long enough to chase; True when any was new."""
        new = {v for v in values if len(v) >= MIN_ECHO and v != self.placeholder} - self.values
        if new:
            self.values |= new
            self._text = self._bytes = None
        return bool(new)

    def __len__(self) -> int:
        return len(self.values)

    def __getstate__(self) -> tuple[str, set[str]]:  # sent to a helper process: no automata
        return self.placeholder, self.values

    def __setstate__(self, state: tuple[str, set[str]]) -> None:
        self.__init__(*state)  # type: ignore[misc]

    def scrub(self, text: str) -> str:
        if not self.values:
            return text
        if self._text is None:
            self._text = AhoCorasick(self.values, matchkind=MatchKind.LeftmostLongest)
        return _replace(text, self._text.find_matches_as_indexes(text), self.placeholder)

    def scrub_bytes(self, data: bytes) -> bytes:
        if not self.values:
            return data
        if self._bytes is None:
            self._bytes = BytesAhoCorasick(
                [v.encode("utf-8") for v in self.values], matchkind=MatchKind.LeftmostLongest
            )
        found = self._bytes.find_matches_as_indexes(data)
        return _replace(data, found, self.placeholder.encode("utf-8"))

    def scrub_tree(self, value: Any) -> Any:
        """JSON-like `value` with every copy replaced, in mapping keys too: an upstream may echo
        a token as a JSON key ({"<token>": {...}}) or in a header name."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {self.scrub_tree(k): self.scrub_tree(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub_tree(v) for v in value]
        return value


def _replace[T: (str, bytes)](data: T, found: list[tuple[int, int, int]], placeholder: T) -> T:
    if not found:
        return data
    pieces, at = [], 0
    for _, start, end in found:
        pieces += [data[at:start], placeholder]
        at = end
    pieces.append(data[at:])
    return data[:0].join(pieces)


class Redactor:
    """One walk over an exchange (or one message) with a policy. Every value it replaces is
    kept in `found`, so `scrub` can take its copies out of the rest."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.placeholder = policy.placeholder
        self.found = Secrets(policy.placeholder)  # the values worth chasing elsewhere
        self.replaced = 0  # how many values were replaced so far

    def scrub(self, text: str) -> str:
        """`text` with every copy of a secret found so far replaced."""
        return self.found.scrub(text)

    def _found(self, value: str) -> None:
        self.found.add([value.strip()])

    def _take(self, value: str) -> str:
        self._found(value)
        self.replaced += 1
        return self.placeholder

    # --- headers and URLs ------------------------------------------------------------------

    def header(self, name: str, value: str) -> str:
        """A header's value as it may be shown: a cookie keeps its name and attributes, an
        `Authorization` its scheme."""
        if not self.policy.is_secret(name):
            return value
        key = _plain(name)
        if key == "cookie":
            pairs = [p.partition("=") for p in value.split(";")]
            self._found(value)
            return "; ".join(
                f"{n.strip()}={self._take(v)}" if eq else self._take(n) for n, eq, v in pairs
            )
        if key == "set_cookie":
            cookie, sep, attributes = value.partition(";")
            name_, eq, secret = cookie.partition("=")
            if eq:
                return f"{name_.strip()}={self._take(secret)}{sep}{attributes}"
        scheme, space, rest = value.strip().partition(" ")
        if key.endswith("authorization") and space and rest.strip() and _SCHEME.fullmatch(scheme):
            self._found(value)
            return f"{scheme} {self._take(rest)}"
        return self._take(value)

    def headers(self, fields: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(k, self.header(k, v)) for k, v in fields]

    def query(self, pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Decoded query parameters, secret ones with the placeholder as their value."""
        return [(k, self._take(v) if self.policy.is_secret(k, query=True) else v) for k, v in pairs]

    def url(self, url: str) -> str:
        """`url` with its password and secret query values replaced; everything else is kept
        byte for byte."""
        parts = urlsplit(url)
        userinfo, at, host = parts.netloc.rpartition("@")
        user, colon, password = userinfo.partition(":")
        if at and colon:
            self._take(unquote_plus(password))
            url = url.replace(f"//{parts.netloc}", f"//{user}:{self.placeholder}@{host}", 1)
        if parts.query:
            query = self.params(parts.query, query=True)
            url = url.replace(f"?{parts.query}", f"?{query}", 1)
        return url

    def params(self, text: str, query: bool = False) -> str:
        """`a=1&b=2` text (a query string; a form body when not `query`) with secret values
        replaced; the other pairs are kept as written."""
        pieces = []
        for piece in text.split("&"):
            name, eq, value = piece.partition("=")
            if eq and self.policy.is_secret(unquote_plus(name), query):
                self._found(value)
                self._take(unquote_plus(value))
                piece = f"{name}={quote(self.placeholder)}"
            pieces.append(piece)
        return "&".join(pieces)

    # --- bodies ----------------------------------------------------------------------------

    def json(self, value: Any) -> Any:
        """A copy of `value` with the values under every secret-named key replaced, at any
        depth: strings and numbers become the placeholder (a string, so the document stays
        valid for what reads it); true, false and null tell nothing and stay."""
        return self._json(value, False, 0)

    def _json(self, value: Any, secret: bool, depth: int) -> Any:
        if depth > MAX_DEPTH:
            self.replaced += 1
            return self.placeholder
        if isinstance(value, dict):
            return {
                k: self._json(v, secret or self.policy.is_secret(str(k)), depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._json(v, secret, depth + 1) for v in value]
        if secret and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return self._take(str(value))
        return value

    def body(self, data: bytes, content_type: str) -> bytes:
        """A body with its secrets replaced: JSON by key, form and multipart by field name,
        other text by the name=value and "name": "value" pairs it holds. Binary is kept as
        it is (only `scrub` finds copies of known secrets in it)."""
        mime = content_type.partition(";")[0].strip().lower()
        if mime.startswith("multipart/form-data"):
            boundary = re.search(r'boundary="?([^";]{1,200})', content_type, re.IGNORECASE)
            return self.multipart(data, boundary.group(1).encode()) if boundary else data
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return data
        if mime == "application/x-www-form-urlencoded":
            return self.params(text).encode("utf-8")
        if text.lstrip()[:1] in ("{", "["):
            try:
                doc = json.loads(text)
            except (ValueError, RecursionError):
                pass
            else:
                before = self.replaced
                redacted = self.json(doc)
                if self.replaced == before:
                    return data
                return json.dumps(redacted, ensure_ascii=False).encode("utf-8")
        return self.text(text).encode("utf-8")

    def multipart(self, data: bytes, boundary: bytes) -> bytes:
        """multipart/form-data with the content of secret-named fields replaced."""
        delimiter = b"--" + boundary
        parts = data.split(delimiter)
        for i, part in enumerate(parts[1:], 1):
            head, sep, content = part.partition(b"\r\n\r\n")
            name = re.search(rb'\bname="([^"]*)"', head)
            if not sep or name is None:
                continue
            if self.policy.is_secret(name.group(1).decode("utf-8", "replace")):
                end = b"\r\n" if content.endswith(b"\r\n") else b""
                value = content.removesuffix(end).decode("utf-8", "replace")
                parts[i] = head + sep + self._take(value).encode("utf-8") + end
        return delimiter.join(parts)

    def text(self, text: str) -> str:
        """Free text with the values of secret-named pairs in it replaced."""

        def json_pair(m: re.Match[str]) -> str:
            quote_, name, colon, value = m.groups()
            if value in _SAYS_NOTHING or not self.policy.is_secret(name):
                return m.group(0)
            mark = value[0] if value[0] in "\"'" else '"'
            self._take(value[1:-1] if value[0] in "\"'" else value)
            return f"{quote_}{name}{quote_}{colon}{mark}{self.placeholder}{mark}"

        def param(m: re.Match[str]) -> str:
            if not self.policy.is_secret(unquote_plus(m.group(1)), query=True):
                return m.group(0)
            self._found(m.group(2))
            self._take(unquote_plus(m.group(2)))
            return f"{m.group(1)}={self.placeholder}"

        def header_line(m: re.Match[str]) -> str:
            value = self.header(m.group(1), m.group(2))
            return m.group(0) if value == m.group(2) else f"{m.group(1)}: {value}"

        def userinfo(m: re.Match[str]) -> str:
            self._take(unquote_plus(m.group(2)))
            return f"//{m.group(1)}:{self.placeholder}@"

        def element(m: re.Match[str]) -> str:
            name = m.group(1).rpartition(":")[2]  # a namespace prefix says nothing
            if not self.policy.is_secret(name):
                return m.group(0)
            self._take(m.group(3))
            return f"<{m.group(1)}{m.group(2) or ''}>{self.placeholder}</{m.group(1)}>"

        text = _TEXT_USERINFO.sub(userinfo, text)
        text = _TEXT_ELEMENT.sub(element, text)
        text = _TEXT_JSON_PAIR.sub(json_pair, text)
        text = _TEXT_PARAM.sub(param, text)
        return _TEXT_HEADER_LINE.sub(header_line, text)


# Shapes of credentials, whatever names them: what a provider's error may quote.
_CHARS = r"[A-Za-z0-9_+/=.~-]"
_CREDENTIAL = re.compile(
    r"\b(?i:bearer|basic)\s+(?=\S*[0-9=._~+/-])[A-Za-z0-9._~+/=*-]{5,}[A-Za-z0-9_~+/=*-]"
    r"|\bsk-[A-Za-z0-9_*.-]{4,}"  # OpenAI, Anthropic (sk-ant-...), masked ones (sk-ab***yz)
    r"|\bAIza[0-9A-Za-z_-]{20,}"  # Google
    r"|\b(?:gh[pousr]_|github_pat_)[A-Za-z0-9_]{20,}"  # GitHub
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"  # Slack
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key ids
    r"|\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"  # JWT
    # Anything long and opaque: 24+ characters with upper and lower case letters and digits.
    rf"|(?<!{_CHARS})(?={_CHARS}*[A-Z])(?={_CHARS}*[a-z])(?={_CHARS}*[0-9]){_CHARS}{{24,}}"
)


def scrub_credentials(text: str, known: Iterable[str] = (), policy: Policy | None = None) -> str:
    """Text from outside (a provider's error, a traceback) fit for answers and logs: the
    `known` keys, anything shaped like a key or token, passwords in URLs and the values of
    secret-named pairs are replaced."""
    policy = policy or Policy.default()
    text = Secrets(policy.placeholder, known).scrub(text)
    text = _CREDENTIAL.sub(lambda m: _keep_scheme(m.group(0), policy.placeholder), text)
    return Redactor(policy).text(text)


def _keep_scheme(credential: str, placeholder: str) -> str:
    scheme, space, _ = credential.partition(" ")
    return f"{scheme} {placeholder}" if space else placeholder


def redact_url(url: str, policy: Policy | None = None) -> str:
    """A URL fit for a log line: no password, no secret query values (a Redis URL's
    `user:pass@`, a `?password=`)."""
    return Redactor(policy or Policy.default()).url(url)
