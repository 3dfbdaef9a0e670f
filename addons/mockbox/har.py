"""HAR in and out, on mitmproxy's own HAR code: `mitmproxy.io.har.request_to_flow` reads entries
(Chromium, Firefox, Safari, Charles... header shapes, base64 and encoded bodies) and
`SaveHar.make_har` writes them. Imports go through the recording core, so a HAR gets the same
redaction, dedupe, sequence and generalize rules as a live recording; exports are redacted with
the same policy (a session recorded before a rule existed, a hand-written mock)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mitmproxy import connection, http
from mitmproxy.addons.savehar import SaveHar
from mitmproxy.io.har import request_to_flow

from .core.library import MockLibrary
from .core.mockwriter import write_atomic
from .core.model import ANY_METHOD, Mock
from .core.pathtemplate import Param
from .core.recording import Rules, Session
from .core.redaction import Policy, Redactor
from .core.render import render
from .core.request import Headers, RequestView
from .core.templating import TemplateEngine, TemplateError
from .recorder import exchange_from_flow

type Progress = Callable[[int, int], None]


@dataclass(slots=True)
class HarImport:
    entries: int = 0  # entries read
    imported: int = 0  # entries that became (part of) a mock
    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_entries(path: Path) -> tuple[list[Any], list[str]]:
    """The HAR's `log.entries`; a file cut short yields its complete entries and a problem that
    names the line and column where it breaks."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        return [], [f"{path}: cannot read: {e}"]
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return _salvage(path, text)
    entries = doc.get("log", {}).get("entries") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        return [], [f"{path}: not a HAR file: no log.entries list"]
    return entries, []


def _salvage(path: Path, text: str) -> tuple[list[Any], list[str]]:
    start = re.search(r'"entries"\s*:\s*\[', text)
    if start is None:
        return [], [f"{path}: not valid JSON and no log.entries list found"]
    decoder = json.JSONDecoder()
    entries: list[Any] = []
    i = start.end()
    while True:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        if i < len(text) and text[i] == "]":
            return entries, [f"{path}: broken JSON after log.entries; read all {len(entries)}"]
        try:
            entry, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError as e:
            where = f"{path}:{e.lineno}:{e.colno}"
            return entries, [
                f"{where}: the HAR is cut short or broken in log.entries[{len(entries)}] "
                f"({e.msg}); the {len(entries)} complete entries before it were imported"
            ]
        entries.append(entry)


def import_har(path: Path, out: Path, rules: Rules, progress: Progress | None = None) -> HarImport:
    """Write the HAR's exchanges as mocks under `out`, one file per host."""
    entries, problems = read_entries(path)
    report = HarImport(len(entries), problems=problems)
    session = Session(out, rules, path.stem)
    for i, entry in enumerate(entries):
        if progress is not None:
            progress(i + 1, len(entries))
        where = f"{path}: log.entries[{i}]"
        try:
            if not isinstance(entry, dict):
                raise ValueError("an entry must be an object")
            if not entry.get("response", {}).get("status"):
                report.problems.append(f"{where}: no response (status 0); skipped")
                continue
            flow = request_to_flow(entry)
        except KeyError as e:
            report.problems.append(f"{where}: missing field {e}; skipped")
            continue
        except (ValueError, TypeError, AttributeError) as e:
            report.problems.append(f"{where}: {e}; skipped")
            continue
        exchange = exchange_from_flow(flow)
        if exchange is not None and session.add(exchange) is not None:
            report.imported += 1
    report.files = session.flush(everything=True)
    return report


def export_har(folder: Path, target: Path, policy: Policy) -> int:
    """Write every answer of the session in `folder` (each step of a sequence) as HAR entries,
    secrets redacted; returns how many."""
    library = MockLibrary(folder, TemplateEngine())
    report = library.refresh()
    if report.problems:
        raise ValueError("; ".join(str(p) for p in report.problems))
    flows = list(_flows(library, policy))
    har = SaveHar().make_har(flows)
    har["log"]["creator"]["name"] = "MockBox"
    write_atomic(target, json.dumps(har, indent=2, ensure_ascii=False))
    return len(flows)


def _flows(library: MockLibrary, policy: Policy) -> Iterator[http.HTTPFlow]:
    engine = library.engine
    for mock in library.index.mocks:
        view, params = _example_request(mock)
        for spec in mock.sequence or (mock.response,):
            try:
                rendered = render(spec, engine, view, params)
            except TemplateError:
                continue
            now = time.time()
            flow = http.HTTPFlow(
                connection.Client(
                    peername=("127.0.0.1", 0), sockname=("127.0.0.1", 0), timestamp_start=now
                ),
                connection.Server(address=None),
            )
            redactor = Redactor(policy)
            request_headers = redactor.headers(view.headers.fields())
            request_body = redactor.body(view.body, view.headers.get("content-type", ""))
            url = redactor.url(view.url)
            response_headers = redactor.headers(rendered.headers)
            content_type = next((v for k, v in rendered.headers if k.lower() == "content-type"), "")
            response_body = redactor.body(rendered.body, content_type)
            flow.request = http.Request.make(
                view.method,
                redactor.scrub(url),
                redactor.found.scrub_bytes(request_body),
                _raw_headers(request_headers, redactor),
            )
            flow.response = http.Response.make(
                rendered.status,
                redactor.found.scrub_bytes(response_body),
                _raw_headers(response_headers, redactor),
            )
            flow.request.timestamp_end = flow.response.timestamp_start = now
            flow.response.timestamp_end = now
            yield flow


def _example_request(mock: Mock) -> tuple[RequestView, dict[str, str]]:
    """A request the mock answers: parameters filled with 1, the query and body it expects."""
    raw = mock.raw["request"]
    params = {seg.name: "1" for seg in mock.path.segments if isinstance(seg, Param)}
    if mock.path.catchall:
        params[mock.path.catchall] = ""
    path = "/" + "/".join(params[s.name] if isinstance(s, Param) else s for s in mock.path.segments)
    host = str(mock.host) if mock.host and not mock.host.wildcard else "mockbox.invalid"
    port = mock.host.port if mock.host and mock.host.port else 443
    scheme = "https" if port == 443 else "http"
    query = tuple(
        (str(k), str(v)) for k, v in raw.get("query", {}).items() if not isinstance(v, dict)
    )
    body, headers = _example_body(raw.get("body"))
    method = next(iter(sorted(mock.methods)))
    view = RequestView(
        "GET" if method == ANY_METHOD else method,
        scheme,
        host.partition(":")[0],
        port,
        path,
        query,
        Headers(headers),
        body,
    )
    return view, params


def _raw_headers(
    fields: Iterable[tuple[str, str]], redactor: Redactor
) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), redactor.scrub(v).encode("utf-8", "replace")) for k, v in fields]


def _example_body(spec: Any) -> tuple[bytes, list[tuple[str, str]]]:
    for item in spec if isinstance(spec, list) else [spec]:
        if isinstance(item, dict) and "json" in item:
            return json.dumps(item["json"]).encode(), [("Content-Type", "application/json")]
        if isinstance(item, dict) and "equals" in item and "jsonpath" not in item:
            return str(item["equals"]).encode(), []
    return b"", []
