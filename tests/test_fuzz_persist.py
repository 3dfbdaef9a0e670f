"""Property tests for every writer of mock files from data MockBox does not control: the
recording core (live recordings and HAR imports), AI answers kept or drafted (`ai.persist`,
`X-MockBox-Persist`, the editor's Generate, `mockbox generate`), "Save as mock" from traffic, and
the WireMock and OpenAPI importers. Whatever the upstream, the model or the document said, in a
header value or a body, the written file loads and serves exactly that: nothing is evaluated."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import assume, given
from hypothesis import strategies as st

from mockbox.core.ai_answer import AIAnswer
from mockbox.core.ai_prompt import GenerationRequest
from mockbox.core.config import load_config
from mockbox.core.library import MockLibrary
from mockbox.core.mockfile import load_mock_file
from mockbox.core.mockwriter import dump_mocks, literal_mock, mock_from_answer
from mockbox.core.model import Mock
from mockbox.core.openapi_import import import_openapi
from mockbox.core.recording import Exchange, Rules, Session
from mockbox.core.redaction import Policy
from mockbox.core.render import Rendered, render
from mockbox.core.request import RequestView
from mockbox.core.templating import TemplateEngine
from mockbox.core.traffic import Exchange as Seen
from mockbox.core.traffic import Message
from mockbox.core.wiremock_import import import_wiremock

from .fuzzing import json_values, time_bound

ENGINE = TemplateEngine()
CONFIG = load_config()
RULES = Rules.from_config(CONFIG.get("record"), CONFIG.get("redact"))

# Each one, run as a template, would show it: a computed value, a loop, a dropped comment, an
# escape cut short, a reach for Python internals.
HOSTILE = [
    "{{ 7*7 }}",
    "{% for i in range(3) %}x{% endfor %}",
    "a{# hidden #}b",
    "{% raw %}{{ 7*7 }}",
    "{% endraw %}{{ 7*7 }}",
    "{%+ endraw %}{{ 7*7 }}{%- raw -%}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{% set x = fake.name() %}{{ x }}",
    "{{ '\\r' }} {{ \"'\" }} \\",
]
pieces = st.sampled_from(
    [
        *("{{", "}}", "{%", "%}", "{#", "#}", "{%-", "-%}", "{%+", "raw", "endraw", " ", "7*7"),
        *("x", "'", '"', "\\", "é", "\t", "|", "(", ")"),
    ]
)
header_values = st.sampled_from(HOSTILE) | st.lists(pieces, max_size=16).map("".join)
texts = header_values | st.lists(pieces | st.sampled_from(["\n", "\r", "\r\n"]), max_size=16).map(
    "".join
)
# A client's credential that spells part of an escape: redaction runs over what is written, so
# it must never be able to take an escape apart.
escape_secrets = st.sampled_from(
    ["{% raw %}", "{% endraw %}", "raw %}", "{% endraw", "{{ '", "' }}", "endraw %}"]
)


def _served(mock: Mock, url_path: str = "/t") -> Rendered:
    spec = mock.sequence[0] if mock.sequence else mock.response
    view = RequestView("GET", "https", "api.test", 443, url_path)
    with time_bound(10):
        return render(spec, ENGINE, view, {})


def _load_one(path: Path, root: Path) -> Mock:
    loaded = load_mock_file(path, root, ENGINE)
    assert loaded.problems == [], [str(p) for p in loaded.problems]
    (mock,) = loaded.mocks
    return mock


def _header(rendered: Rendered, name: str) -> str:
    return next(v for k, v in rendered.headers if k.lower() == name.lower())


@given(header_values, texts, escape_secrets)
def test_recording_writes_an_upstreams_answer_as_data(header: str, body: str, secret: str) -> None:
    assume(secret not in header and secret not in body and "Bearer" not in header + body)
    assume(not any(c in body for c in "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f\x1b"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        session = Session(root, RULES)
        session.add(
            Exchange(
                "GET", "https", "api.test", 443, "/t", (),
                (("Authorization", f"Bearer {secret}"),), b"", 200,
                (("X-Tpl", header), ("Content-Type", "text/plain")), body.encode(),
            )
        )  # fmt: skip
        (path,) = session.flush()
        served = _served(_load_one(path, root))
    assert _header(served, "X-Tpl") == header
    assert served.body == body.encode()


@given(header_values, json_values, texts)
def test_recording_keeps_json_answers_as_data(header: str, doc: Any, text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        session = Session(root, RULES)
        payload = {"doc": doc, "text": text, "list": [text, {"t": text}]}
        session.add(
            Exchange(
                "GET", "https", "api.test", 443, "/t", (), (), b"", 200,
                (("Content-Type", "application/json"), ("X-Tpl", header)),
                json.dumps(payload).encode(),
            )
        )  # fmt: skip
        (path,) = session.flush()
        served = _served(_load_one(path, root))
    assert json.loads(served.body) == payload and _header(served, "X-Tpl") == header


@given(header_values, json_values | texts, st.integers(200, 599))
def test_ai_answers_are_kept_as_data(header: str, body: Any, status: int) -> None:
    """`ai.persist`, `X-MockBox-Persist`, the editor's Generate and `mockbox generate` all
    write `mock_from_answer`."""
    greq = GenerationRequest("GET", "https://api.test/t")
    mock = mock_from_answer(greq, AIAnswer(status, {"X-Tpl": header, "X-Plain": "ok"}, body))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "generated.yaml"
        path.write_text(dump_mocks([mock]))
        served = _served(_load_one(path, Path(tmp)))
    assert served.status == status
    assert _header(served, "X-Tpl") == header and _header(served, "X-Plain") == "ok"
    if body is None:
        assert served.body == b""
    elif isinstance(body, str):
        assert served.body == body.encode()
    else:
        assert json.loads(served.body) == body


@given(header_values, texts)
def test_save_as_mock_from_traffic_keeps_the_answer_as_data(header: str, body: str) -> None:
    answer = Message(
        ((b"X-Tpl", header.encode()), (b"Content-Type", b"text/plain")), body.encode(), len(body)
    )
    seen = Seen(
        1, 0.0, "GET", ("https", "api.test", 443, "/t"), 200, "upstream", None, 1.0,
        Message((), b"", 0), answer,
    )  # fmt: skip
    mock = seen.draft(Policy.default())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "saved.yaml"
        path.write_text(dump_mocks([mock]))
        served = _served(_load_one(path, Path(tmp)))
    assert _header(served, "X-Tpl") == header and served.body == body.encode()


@given(header_values, texts, texts)
def test_wiremock_stubs_are_imported_as_data(header: str, body: str, other: str) -> None:
    """(The mappings are read as YAML, which refuses some JSON: control characters, escaped
    astral characters. Those stubs are reported, not imported; not the subject here.)"""
    doc = [other, {"k": other, other: 1}]
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "wm", Path(tmp) / "out"
        (src / "mappings").mkdir(parents=True)
        stubs = [
            {"request": {"url": "/t"}, "response": {"headers": {"X-Tpl": header}, "body": body}},
            {"request": {"url": "/j"}, "response": {"jsonBody": {"doc": doc, "t": body}}},
        ]
        for i, stub in enumerate(stubs):
            (src / "mappings" / f"{i}.json").write_text(json.dumps(stub, ensure_ascii=False))
        result = import_wiremock(src)
        assert result.problems == [], result.problems
        loaded = load_mock_file(result.write(out), out, ENGINE)
        assert loaded.problems == []
        by_path = {m.path.text: m for m in loaded.mocks}
        text, js = _served(by_path["/t"]), _served(by_path["/j"])
    assert _header(text, "X-Tpl") == header and text.body == body.encode()
    assert json.loads(js.body) == {"doc": doc, "t": body}


def test_a_wiremock_body_file_is_never_loaded_as_a_mock_file(tmp_path: Path) -> None:
    """`bodyFileName: evil.yaml` (a mock file full of templates, say) is copied as a body file
    that the loader never reads as mocks, and served byte for byte."""
    src, out = tmp_path / "wm", tmp_path / "out"
    (src / "mappings").mkdir(parents=True)
    (src / "__files" / "sub").mkdir(parents=True)
    evil = "mocks:\n  - request: {path: /evil}\n    response: {body: '{{ 7*7 }}'}\n"
    (src / "__files" / "evil.yaml").write_text(evil)
    (src / "__files" / "sub" / ".hidden.YML").write_text(evil)
    stubs = [
        {"request": {"url": "/a"}, "response": {"bodyFileName": "evil.yaml"}},
        {"request": {"url": "/b"}, "response": {"bodyFileName": "sub/../sub/.hidden.YML"}},
    ]
    for i, stub in enumerate(stubs):
        (src / "mappings" / f"{i}.json").write_text(json.dumps(stub, ensure_ascii=False))
    result = import_wiremock(src)
    assert result.problems == []
    result.write(out)
    library = MockLibrary(out, ENGINE)
    library.refresh()
    assert library.problems == []
    assert sorted(m.path.text for m in library.index.mocks) == ["/a", "/b"]  # no /evil
    for mock in library.index.mocks:
        assert _served(mock).body == evil.encode()
    written = [p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()]
    assert not [p for p in written if p.lower().endswith((".yaml", ".yml")) and ".files/" in p]
    assert sorted(written) == ["wm.files/evil.yaml.txt", "wm.files/sub/_.hidden.YML.txt", "wm.yaml"]


def test_an_openapi_document_is_imported_as_data(tmp_path: Path) -> None:
    """A media type and examples are the document's text: `{{ ... }}` in them is served."""
    media = "application/vnd.{{ 7*7 }}+json"
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/t": {
                "get": {
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {media: {"example": {"a": HOSTILE[1], "b": HOSTILE[4]}}},
                        }
                    }
                }
            },
            "/s": {
                "get": {
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {"text/plain": {"example": HOSTILE[0]}},
                        }
                    }
                }
            },
        },
    }
    src = tmp_path / "api.yaml"
    src.write_text(yaml.safe_dump(doc))
    result = import_openapi(src)
    assert result.problems == [], result.problems
    out = tmp_path / "out"
    loaded = load_mock_file(result.write(out), out, ENGINE)
    assert loaded.problems == []
    by_path = {m.path.text: m for m in loaded.mocks}
    served = _served(by_path["/t"])
    assert _header(served, "Content-Type") == media
    assert json.loads(served.body) == {"a": HOSTILE[1], "b": HOSTILE[4]}
    assert _served(by_path["/s"]).body == HOSTILE[0].encode()


def test_literal_mock_covers_every_templated_field() -> None:
    """Headers, body, every answer of a sequence and a fault's answer."""
    hostile = HOSTILE[0]
    answer = {"status": 200, "headers": {"X-A": hostile, "X-N": 3}, "body": {"k": [hostile]}}
    mock = literal_mock(
        {
            "request": {"path": "/t"},
            "responses": [answer, {**answer, "fault": {"status": 503, "body": hostile}}],
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.yaml"
        path.write_text(dump_mocks([mock]))
        loaded = _load_one(path, Path(tmp))
    view = RequestView("GET", "https", "api.test", 443, "/t")
    for spec in (*loaded.sequence, loaded.sequence[1].fault.response):  # type: ignore[union-attr]
        assert spec is not None
        rendered = render(spec, ENGINE, view, {})
        if spec.status == 503:
            assert rendered.body == hostile.encode()
            continue
        assert dict(rendered.headers)["X-A"] == hostile and dict(rendered.headers)["X-N"] == "3"
        assert json.loads(rendered.body) == {"k": [hostile]}
