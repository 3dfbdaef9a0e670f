"""The match index: method → host → a trie of path segments, so lookup cost does not grow
with the number of mocks. Also explains, for a request nothing matched, the nearest mocks.

Both take a Work: the bounds (time, event-loop slice, body size) of one request's matching.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from .bodypath import TooMuchWork
from .model import ANY_METHOD, Mock
from .pathtemplate import Param
from .request import RequestView
from .work import Work


@dataclass(frozen=True, slots=True)
class Match:
    mock: Mock
    params: dict[str, str]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A mock that did not match, and why."""

    mock: Mock
    reasons: tuple[str, ...]
    score: float

    def to_json(self) -> dict[str, Any]:
        return {
            "mock": self.mock.name,
            "id": self.mock.id,
            "file": str(self.mock.file),
            "line": self.mock.line,
            "reasons": list(self.reasons),
        }


@dataclass(slots=True)
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    param: _Node | None = None
    here: list[Mock] = field(default_factory=list)  # templates that end at this node
    catchall: list[Mock] = field(default_factory=list)  # templates with a trailing {x*} here

    def insert(self, mock: Mock) -> None:
        node = self
        for seg in mock.path.segments:
            if isinstance(seg, Param):
                node.param = node.param or _Node()
                node = node.param
            else:
                node = node.literal.setdefault(seg, _Node())
        (node.catchall if mock.path.catchall else node.here).append(mock)

    def collect(self, segments: tuple[str, ...], i: int, out: list[Mock]) -> None:
        if self.catchall:
            out.extend(self.catchall)
        if i == len(segments):
            out.extend(self.here)
            return
        child = self.literal.get(segments[i])
        if child is not None:
            child.collect(segments, i + 1, out)
        if self.param is not None:
            self.param.collect(segments, i + 1, out)


@dataclass(slots=True)
class _HostTable:
    exact: dict[str, _Node] = field(default_factory=dict)
    wildcard: dict[str, _Node] = field(default_factory=dict)  # ".example.com" → node
    any_host: _Node = field(default_factory=_Node)

    def insert(self, mock: Mock) -> None:
        if mock.host is None:
            node = self.any_host
        else:
            table = self.wildcard if mock.host.wildcard else self.exact
            node = table.setdefault(mock.host.name, _Node())
        node.insert(mock)


class MockIndex:
    def __init__(self, mocks: Iterable[Mock] = ()) -> None:
        self.mocks: list[Mock] = list(mocks)
        self._tables: dict[str, _HostTable] = {}
        for mock in self.mocks:
            for method in mock.methods:
                self._tables.setdefault(method, _HostTable()).insert(mock)

    def __len__(self) -> int:
        return len(self.mocks)

    def match(self, request: RequestView, work: Work | None = None) -> Match | None:
        """The best mock for `request`: highest priority, then most specific, then first loaded."""
        work = work or Work()
        host = request.host.lower()
        segments = request.segments
        found: list[Mock] = []
        for method in (request.method.upper(), ANY_METHOD):
            table = self._tables.get(method)
            if table is None:
                continue
            exact = table.exact.get(host)
            if exact is not None:
                exact.collect(segments, 0, found)
            for suffix, node in table.wildcard.items():
                if host.endswith(suffix):
                    node.collect(segments, 0, found)
            table.any_host.collect(segments, 0, found)
        if len(found) > 1:
            found.sort(key=lambda m: m.sort_key, reverse=True)
        for mock in found:
            work.tick()
            if accepts(mock, request, work):
                params = mock.path.match(request.segments)
                assert params is not None  # the trie only yields templates that match
                return Match(mock, params)
        return None

    def nearest(
        self, request: RequestView, limit: int = 3, work: Work | None = None
    ) -> list[Candidate]:
        """Up to `limit` mocks closest to matching `request`, each with its reasons.

        A cheap lower bound of every mock's score (method, host, path, no matchers) comes
        first; mocks are then explained in that order until no remaining one can rank."""
        work = work or Work()
        host = request.host.lower()
        same_host: list[tuple[float, Mock]] = []
        other_hosts: list[tuple[float, Mock]] = []
        for mock in self.mocks:
            work.tick()
            same = mock.host is None or mock.host.test(host, request.port)
            (same_host if same else other_hosts).append((_lower_bound(mock, request), mock))
        bounded = same_host or other_hosts  # another host's mocks only when none is this host's
        bounded.sort(key=lambda pair: pair[0])
        best: list[tuple[tuple[float, tuple[int, ...]], int, Candidate]] = []  # a max-heap
        for bound, mock in bounded:
            if len(best) == limit and bound > -best[0][0][0]:
                break
            work.tick()
            candidate = explain(mock, request, work)
            rank = (-candidate.score, mock.sort_key)  # negated: heapq keeps the smallest first
            entry = (rank, id(mock), candidate)
            if len(best) < limit:
                heapq.heappush(best, entry)
            elif rank > best[0][0]:
                heapq.heapreplace(best, entry)
        return [c for _, _, c in sorted(best, key=lambda e: e[0], reverse=True)]


def accepts(mock: Mock, request: RequestView, work: Work | None = None) -> bool:
    """The non-path matchers (host port, query, headers, body) all pass."""
    if mock.host is not None and mock.host.port is not None and request.port != mock.host.port:
        return False
    if mock.query:
        qmap = request.query_map
        if not all(m.test(qmap.get(name, ())) for name, m in mock.query):
            return False
    if mock.headers:
        headers = request.headers
        for name, matcher in mock.headers:
            value = headers.get(name)
            if not matcher.test(() if value is None else (value,)):
                return False
    if not mock.body:
        return True
    work = work or Work()
    if not work.body(len(request.body)):
        return False
    try:
        return all(b.test(request, work) for b in mock.body)
    except TooMuchWork:
        return False


def explain(mock: Mock, request: RequestView, work: Work | None = None) -> Candidate:
    """Every reason `mock` does not match `request`, with a distance score (lower is nearer)."""
    reasons: list[str] = []
    score = _method_host_score(mock, request, reasons)
    path_reasons, path_score = _explain_path(mock, request.segments)
    reasons.extend(path_reasons)
    score += path_score
    qmap = request.query_map
    for name, matcher in mock.query:
        values = qmap.get(name, [])
        if not matcher.test(values):
            got = ", ".join(repr(v) for v in values) if values else "nothing"
            reasons.append(f"query parameter {name!r} should be {matcher.describe()}, got {got}")
            score += 1
    for name, matcher in mock.headers:
        value = request.headers.get(name)
        if not matcher.test(() if value is None else (value,)):
            got = repr(value[:60]) if value is not None else "missing"
            reasons.append(f"header {name!r} should be {matcher.describe()}, got {got}")
            score += 1
    if mock.body:
        score += _explain_body(mock, request, work or Work(), reasons)
    return Candidate(mock, tuple(reasons), score)


def _explain_body(mock: Mock, request: RequestView, work: Work, reasons: list[str]) -> float:
    """One point per failing body matcher (each one's reason goes to `reasons`)."""
    size = len(request.body)
    if not work.body(size):
        reasons.append(
            f"body is {size} bytes, more than the {work.max_body_bytes} that body matchers look "
            "at (matching.max_body_bytes)"
        )
        return len(mock.body)
    failed = 0
    for body in mock.body:
        try:
            if body.test(request, work):
                continue
            reasons.append(f"body does not match: {body.describe()}")
        except TooMuchWork as e:
            reasons.append(f"body does not match: {body.describe()} ({e})")
        failed += 1
    return failed


def _method_host_score(mock: Mock, request: RequestView, reasons: list[str] | None) -> float:
    """What method and host add to the score; their reasons go to `reasons` when given."""
    score = 0.0
    method = request.method.upper()
    if ANY_METHOD not in mock.methods and method not in mock.methods:
        if reasons is not None:
            reasons.append(
                f"method differs: mock expects {'/'.join(sorted(mock.methods))}, got {method}"
            )
        score += 3
    if mock.host is not None and not mock.host.test(request.host, request.port):
        if reasons is not None:
            reasons.append(
                f"host differs: mock expects {mock.host}, got {request.host}:{request.port}"
            )
        score += 5
    return score


def _lower_bound(mock: Mock, request: RequestView) -> float:
    """At most `explain(mock, request).score`, without its costly parts (spelling distance,
    matchers, reasons)."""
    segments = request.segments
    want = mock.path.segments
    score = _method_host_score(mock, request, None)
    score += 2 * sum(
        1 for w, got in zip(want, segments, strict=False) if isinstance(w, str) and w != got
    )
    extra = len(segments) - len(want)
    if extra < 0 or (extra > 0 and mock.path.catchall is None):
        score += 2 * abs(extra)
    return score


def _explain_path(mock: Mock, segments: tuple[str, ...]) -> tuple[list[str], float]:
    want = mock.path.segments
    reasons: list[str] = []
    score = 0.0
    for i, (w, got) in enumerate(zip(want, segments, strict=False)):
        if isinstance(w, str) and w != got:
            reasons.append(f"path segment {i + 1} differs: mock expects {w!r}, got {got!r}")
            # A near-miss spelling ("itemz") is closer than an unrelated segment ("orders").
            score += 2 + 4 * (1 - SequenceMatcher(None, w, got).ratio())
    extra = len(segments) - len(want)
    if extra < 0 or (extra > 0 and mock.path.catchall is None):
        reasons.append(
            f"path has {len(segments)} segment(s), mock {mock.path.text!r} expects "
            f"{len(want)}{' or more' if mock.path.catchall else ''}"
        )
        score += 2 * abs(extra)
    return reasons, score
