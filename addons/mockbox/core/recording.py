"""Turning seen request/response pairs into mock files, with the same rules for the recorder
addon and the HAR importer: secrets redacted (core/redaction.py), duplicates written once,
differing answers kept as a sequence, JSON bodies as YAML mappings, large or binary bodies in
body files beside the YAML, and (optionally) concrete ids generalized into `{id}` path
templates."""

from __future__ import annotations

import hashlib
import json
import mimetypes
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from .mockwriter import (
    body_file_name,
    comment,
    dump_mock,
    host_file_name,
    inside,
    join_mocks,
    literal_mock,
    literal_path,
    plain_host,
    write_atomic,
)
from .redaction import Policy, Redactor, Secrets

# Never written: they describe one connection or one encoding, not the answer.
_DROP_RESPONSE_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "content-encoding",
        "date",
        "proxy-connection",
        "upgrade",
        "trailer",
        "x-mockbox-source",
    }
)
_SKIP_METHODS = frozenset({"CONNECT"})
_METHOD = re.compile(r"^[A-Za-z]+$")  # as the mock file schema allows
_SKIPPED_LISTED = 20  # answers not recorded named per host file; the rest are counted


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and the answer it got, decoded (no transfer or content encoding)."""

    method: str
    scheme: str
    host: str
    port: int
    path: str  # without the query
    query: tuple[tuple[str, str], ...]
    request_headers: tuple[tuple[str, str], ...]
    request_body: bytes
    status: int
    response_headers: tuple[tuple[str, str], ...]
    response_body: bytes


@dataclass(frozen=True, slots=True)
class Rules:
    """What the `redact` and `record` sections of the configuration say, plus --generalize."""

    policy: Policy
    inline_limit: int = 16384
    generalize: bool = False
    max_body_bytes: int = 10 << 20  # larger answers are not recorded (the recorder streams them)

    @property
    def placeholder(self) -> str:
        return self.policy.placeholder

    @classmethod
    def from_config(
        cls, record: Mapping[str, Any], redact: Mapping[str, Any], generalize: bool = False
    ) -> Rules:
        return cls(
            Policy.from_config(redact),
            int(record["inline_limit"]),
            generalize,
            int(record["max_body_bytes"]),
        )


@dataclass(slots=True)
class _Entry:
    """One distinct request; `runs` holds its distinct answers in order, with repeat counts."""

    request: dict[str, Any]
    runs: list[list[Any]] = field(default_factory=list)  # [[response dict, count], ...]

    def add(self, response: dict[str, Any]) -> bool:
        if self.runs and self.runs[-1][0] == response:
            self.runs[-1][1] += 1
            return False
        self.runs.append([response, 1])
        return True

    def responses(self) -> list[dict[str, Any]]:
        """First call, second call, ...; the last answer's repeats are implied."""
        out: list[dict[str, Any]] = []
        for i, (response, count) in enumerate(self.runs):
            out.extend([response] * (1 if i == len(self.runs) - 1 else count))
        return out


@dataclass(slots=True)
class _Host:
    entries: dict[str, _Entry] = field(default_factory=dict)  # by request, as JSON
    files: dict[str, bytes] = field(default_factory=dict)  # body file name → content
    seen: int = 0
    dirty: bool = False
    # Each mock's YAML, by the mock as JSON: a flush re-emits only the mocks that changed.
    items: dict[str, str] = field(default_factory=dict)
    flushed: set[str] = field(default_factory=set)  # body files this session wrote
    secrets_at_flush: int = 0  # how many secrets were known at the last flush
    skipped: list[str] = field(default_factory=list)  # answers not recorded, for the header
    skipped_total: int = 0


@dataclass(frozen=True, slots=True)
class Redacted:
    """An exchange ready to record: every secret-named value replaced, and every copy of a
    secret known (before or in it); with the values it revealed."""

    request: dict[str, Any]  # the request as matchers
    headers: list[tuple[str, str]]  # the answer's
    body: bytes  # the answer's
    found: frozenset[str]


def recordable(ex: Exchange) -> bool:
    """False for what is never recorded: CONNECT, other schemes, and a method no mock can
    match (its file would not load)."""
    return (
        ex.method.upper() not in _SKIP_METHODS
        and ex.scheme in ("http", "https")
        and _METHOD.match(ex.method) is not None
    )


def redact_exchange(ex: Exchange, rules: Rules, known: Secrets) -> Redacted:
    """The slow half of recording an exchange: walking its bodies for secret-named fields
    (whose values join `known`), then taking every known secret out. Touches nothing else,
    so the recorder runs it in a helper process for large bodies."""
    redactor = Redactor(rules.policy)
    redactor.headers(ex.request_headers)  # never written; their values are found for echoes
    request = _request(ex, redactor, rules.inline_limit)
    headers = redactor.headers(
        (k, v) for k, v in ex.response_headers if k.lower() not in _DROP_RESPONSE_HEADERS
    )
    body = ex.response_body
    if body:
        body = redactor.body(body, _header(ex.response_headers, "content-type"))
    known.add(redactor.found.values)
    text = _text(body) if body else None
    return Redacted(
        _matchers(known.scrub_tree(request), rules),
        [(k, known.scrub(v)) for k, v in headers],
        known.scrub(text).encode("utf-8") if text is not None else known.scrub_bytes(body),
        frozenset(redactor.found.values),
    )


def _request(ex: Exchange, redactor: Redactor, inline_limit: int) -> dict[str, Any]:
    """The request as matchers, secrets replaced (`_matchers` then leaves those out)."""
    default_port = {"http": 80, "https": 443}[ex.scheme]
    host = ex.host.lower() if ex.port == default_port else f"{ex.host.lower()}:{ex.port}"
    request: dict[str, Any] = {"method": ex.method.upper()}
    if plain_host(host):  # an IPv6 literal has no host pattern: any host then
        request["host"] = host
    request["path"] = literal_path(ex.path)
    query: dict[str, str] = {}
    for name, value in redactor.query(ex.query):
        query.setdefault(name, value)
    if query:
        request["query"] = query
    if ex.request_body:
        data = redactor.body(ex.request_body, _header(ex.request_headers, "content-type"))
        text = _text(data) if len(data) <= inline_limit else None
        if text is not None:
            parsed = _json(text)
            request["body"] = {"equals": text} if parsed is _NOT_JSON else {"json": parsed}
    return request


class Session:
    """A recording session: exchanges in, one mock file per host out (under `folder`).
    Not thread-safe: the recorder calls it from one worker thread only."""

    def __init__(self, folder: Path, rules: Rules, title: str = "") -> None:
        self.folder = folder
        self.rules = rules
        self.title = title or folder.name
        self._hosts: dict[str, _Host] = {}
        # Every secret seen in the session: one request's token must not survive in another
        # exchange's answer either (a page that embeds it, an echo of an earlier call).
        self._secrets = Secrets(rules.placeholder)

    def add(self, ex: Exchange, redacted: Redacted | None = None) -> str | None:
        """Take one exchange (with `redact_exchange`'s result when it was made elsewhere, with
        the secrets `secrets()` gave then); returns the host file stem it went to (None when
        skipped)."""
        if not recordable(ex):
            return None
        before = len(self._secrets)
        if redacted is None:
            redacted = redact_exchange(ex, self.rules, self._secrets)
        else:
            self._secrets.add(redacted.found)
        if len(self._secrets) != before:
            self._rewrite_all()
        stem = _host_stem(ex)
        host = self._hosts.setdefault(stem, _Host())
        host.seen += 1
        key = json.dumps(redacted.request, sort_keys=True, default=str)
        entry = host.entries.get(key)
        if entry is None:
            entry = host.entries[key] = _Entry(redacted.request)
            host.dirty = True
        response = self._response(ex, redacted.headers, redacted.body, stem, host)
        if entry.add(response):
            host.dirty = True
        return stem

    def secrets(self) -> Secrets:
        """A copy of the secrets known so far, for `redact_exchange` elsewhere."""
        return Secrets(self.rules.placeholder, self._secrets.values)

    def skip(self, ex: Exchange, size: str) -> None:
        """Note an answer that was not recorded because its body (`size`, in words) is over
        the cap: its host's file names it in its header comment. The secrets its request
        carries are the session's too (the token in its headers may be in its path)."""
        if not recordable(ex):
            return
        redactor = Redactor(self.rules.policy)
        redactor.headers(ex.request_headers)
        redactor.query(ex.query)
        if self._secrets.add(redactor.found.values):
            self._rewrite_all()
        host = self._hosts.setdefault(_host_stem(ex), _Host())
        host.skipped_total += 1
        if len(host.skipped) < _SKIPPED_LISTED:
            path = literal_path(ex.path)[:200]
            host.skipped.append(f"{ex.method.upper()[:16]} {path} ({size})")
        host.dirty = True

    def scrub(self, text: str) -> str:
        """`text` without any secret the session knows, for a log line."""
        return self._secrets.scrub(text)

    def _rewrite_all(self) -> None:
        """After a secret is learned: written items and files may hold it."""
        for host in self._hosts.values():
            host.items.clear()
            host.dirty = True

    def counts(self) -> dict[str, int]:
        """Requests seen so far, by host."""
        return {stem: h.seen for stem, h in self._hosts.items()}

    def documents(self) -> dict[str, str]:
        """Mock file name → YAML text, for every host."""
        return {f"{stem}.yaml": self._document(stem) for stem in self._hosts}

    def flush(self, everything: bool = False) -> list[Path]:
        """Write the files of hosts that changed (or all) atomically; returns what was written."""
        written: list[Path] = []
        for stem, host in self._hosts.items():
            if not (host.dirty or everything):
                continue
            learned = len(self._secrets) != host.secrets_at_flush  # new ones since the last flush
            for name, content in host.files.items():
                target = inside(self.folder, name)
                if target.exists() and not (learned and name in host.flushed):
                    continue
                scrubbed = self._secrets.scrub_bytes(content)
                # A body file written before a secret was learned (a login answer holding the
                # token that later requests send) is written again without it.
                if not target.exists() or scrubbed != content:
                    write_atomic(target, scrubbed)
                host.files[name] = scrubbed
                host.flushed.add(name)
            host.secrets_at_flush = len(self._secrets)
            target = self.folder / f"{stem}.yaml"
            write_atomic(target, self._document(stem))
            host.dirty = False
            written.append(target)
        return written

    # --- building mocks ---------------------------------------------------------------------

    def _response(
        self,
        ex: Exchange,
        fields: list[tuple[str, str]],
        body: bytes,
        stem: str,
        host: _Host,
    ) -> dict[str, Any]:
        headers: dict[str, str] = {}
        for name, value in fields:
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        response: dict[str, Any] = {"status": ex.status}
        if headers:
            response["headers"] = headers
        if not body:
            return response
        text = _text(body) if len(body) <= self.rules.inline_limit else None
        if text is not None:
            parsed = _json(text)
            response["body"] = parsed if isinstance(parsed, (dict, list)) else text
            return response
        name = _body_file_name(stem, body, _header(ex.response_headers, "content-type"))
        host.files[name] = body
        response["body_file"] = name
        return response

    # --- documents ----------------------------------------------------------------------------

    def _document(self, stem: str) -> str:
        host = self._hosts[stem]
        entries = list(host.entries.values())
        groups = (
            _generalize(entries) if self.rules.generalize else [(e, e.request) for e in entries]
        )
        groups.sort(key=lambda g: (g[1]["path"], g[1]["method"], _name(g[1])))
        names: set[str] = set()
        items: dict[str, str] = {}
        for entry, request in groups:
            mock: dict[str, Any] = {"name": _unique(_name(request), names), "request": request}
            responses = entry.responses()
            if len(responses) == 1:
                mock["response"] = responses[0]
            else:
                mock["responses"] = responses
            key = json.dumps(mock, default=str)
            item = host.items.get(key)
            if item is None:
                scrubbed = self._secrets.scrub_tree(mock)
                scrubbed["request"] = _matchers(scrubbed["request"], self.rules)
                # Literal last: after redaction, which must not be able to undo an escape.
                item = dump_mock(literal_mock(scrubbed))
            items[key] = item
        host.items = items
        header = (
            f"Recorded by MockBox (session {self.title!r}). Secrets are replaced by "
            f"{self.rules.placeholder!r}.\nEdit freely: this is an ordinary mock file."
        )
        if host.skipped_total:
            header += (
                f"\nNot recorded: answers over record.max_body_bytes ({self.rules.max_body_bytes})"
                + "".join(f"\n  {self._secrets.scrub(line)}" for line in host.skipped)
            )
            if host.skipped_total > len(host.skipped):
                header += f"\n  ... and {host.skipped_total - len(host.skipped)} more"
        return join_mocks(list(items.values()), comment(header))


# --- secrets ----------------------------------------------------------------------------------


def _matchers(request: dict[str, Any], rules: Rules) -> dict[str, Any]:
    """`request` without matchers made from a redacted value: a mock that only matches the
    literal placeholder is useless. A secret query parameter is left out; a JSON body is
    matched on its other fields (`json_includes`); any other body is not matched."""
    placeholder = rules.placeholder
    out = dict(request)
    query = {k: v for k, v in request.get("query", {}).items() if placeholder not in v}
    if query:
        out["query"] = query
    else:
        out.pop("query", None)
    body = request.get("body")
    if body is not None and _without(body, placeholder) != body:
        out.pop("body")
        kept = _without(body.get("json"), placeholder)
        if isinstance(kept, (dict, list)):
            out["body"] = {"json_includes": kept}
    return out


_DROPPED: Any = object()


def _without(value: Any, placeholder: str) -> Any:
    """`value` without the strings (keys and items too) that hold the placeholder."""
    if isinstance(value, str):
        return _DROPPED if placeholder in value else value
    if isinstance(value, dict):
        kept = {k: _without(v, placeholder) for k, v in value.items() if placeholder not in k}
        return {k: v for k, v in kept.items() if v is not _DROPPED}
    if isinstance(value, list):
        return [v for v in (_without(item, placeholder) for item in value) if v is not _DROPPED]
    return value


def _header(fields: tuple[tuple[str, str], ...], name: str) -> str:
    return next((v for k, v in fields if k.lower() == name), "")


# --- bodies -----------------------------------------------------------------------------------


class _NotJson:
    pass


_NOT_JSON: Any = _NotJson()


def _text(body: bytes) -> str | None:
    """The body as text when it is UTF-8 without control bytes (else it is binary)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(c in text for c in "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f\x1b"):
        return None
    return text


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _body_file_name(stem: str, body: bytes, content_type: str) -> str:
    digest = hashlib.sha256(body).hexdigest()[:16]
    mime = content_type.partition(";")[0].strip().lower()
    ext = (mimetypes.guess_extension(mime) if mime else None) or ".bin"
    return body_file_name(f"{stem}.files", f"{digest}{ext}")


# --- names and paths ---------------------------------------------------------------------------


def _host_stem(ex: Exchange) -> str:
    default = (ex.scheme == "http" and ex.port == 80) or (ex.scheme == "https" and ex.port == 443)
    return host_file_name(ex.host if default else f"{ex.host}:{ex.port}").removesuffix(".yaml")


def _name(request: dict[str, Any]) -> str:
    name = f"{request['method']} {request['path']}"
    if "query" in request:
        name += "?" + urlencode(request["query"])
    return name


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name} #{n}"
    taken.add(candidate)
    return candidate


# --- generalizing ------------------------------------------------------------------------------

_ID = re.compile(
    r"^(?:\d+"
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,})$"
)


def is_id(segment: str) -> bool:
    """A numeric id, a UUID or a hash (8 or more hex digits, at least one a digit)."""
    return bool(_ID.match(segment))


def _generalize(entries: list[_Entry]) -> list[tuple[_Entry, dict[str, Any]]]:
    """Entries whose paths differ only in id-like segments become one `{id}` template, answered
    by the first one's answers (one example per template); the rest stay as seen."""
    groups: dict[tuple[Any, ...], list[_Entry]] = {}
    for entry in entries:
        segments = entry.request["path"].split("/")
        shape = tuple("\0id" if is_id(s) else s for s in segments)
        rest = json.dumps({k: v for k, v in entry.request.items() if k != "path"}, sort_keys=True)
        groups.setdefault((shape, rest), []).append(entry)
    out: list[tuple[_Entry, dict[str, Any]]] = []
    for members in groups.values():
        paths = [m.request["path"].split("/") for m in members]
        varying = [i for i in range(len(paths[0])) if len({p[i] for p in paths}) > 1]
        if not varying:
            out.extend((m, m.request) for m in members)
            continue
        segments = list(paths[0])
        for n, i in enumerate(varying):
            segments[i] = "{id}" if n == 0 else f"{{id{n + 1}}}"
        out.append((members[0], {**members[0].request, "path": "/".join(segments)}))
    return out
