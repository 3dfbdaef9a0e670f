"""The pure recording core: escaping, sequences, generalizing, redaction (no proxy needed)."""

from __future__ import annotations

from pathlib import Path

import yaml

from mockbox.core.config import load_config
from mockbox.core.mockfile import load_mock_file
from mockbox.core.mockwriter import literal
from mockbox.core.recording import Exchange, Rules, Session, is_id
from mockbox.core.render import render
from mockbox.core.request import RequestView
from mockbox.core.templating import TemplateEngine


def _rules(**kw: object) -> Rules:
    config = load_config()
    rules = Rules.from_config(config.get("record"), config.get("redact"))
    return Rules(**{**{f: getattr(rules, f) for f in rules.__slots__}, **kw})  # type: ignore[arg-type]


def _ex(path: str, body: bytes, status: int = 200, **kw: object) -> Exchange:
    base: dict[str, object] = {
        "method": "GET",
        "scheme": "https",
        "host": "api.test",
        "port": 443,
        "path": path,
        "query": (),
        "request_headers": (),
        "request_body": b"",
        "status": status,
        "response_headers": (("Content-Type", "application/json"),),
        "response_body": body,
    }
    return Exchange(**{**base, **kw})  # type: ignore[arg-type]


def test_literal_strings_render_as_themselves() -> None:
    engine = TemplateEngine()
    view = RequestView("GET", "http", "a.test", 80, "/")
    for text in ["plain", "Hi {{ name }}", "{% if x %}", "{# c #} {% endraw %} {{ y }}\n'q'\\"]:
        compiled = engine.compile(literal(text))
        assert compiled.render(engine.context(compiled.needs, view, {})) == text


def test_sequence_keeps_call_order_and_collapses_the_tail(tmp_path: Path) -> None:
    session = Session(tmp_path, _rules())
    for state in ["a", "a", "b", "b", "b"]:
        session.add(_ex("/job", f'{{"s": "{state}"}}'.encode()))
    session.add(_ex("/same", b"[1]"))
    session.add(_ex("/same", b"[1]"))
    (path,) = session.flush()
    mocks = {m["name"]: m for m in yaml.safe_load(path.read_text())["mocks"]}
    assert [r["body"]["s"] for r in mocks["GET /job"]["responses"]] == ["a", "a", "b"]
    assert mocks["GET /same"]["response"]["body"] == [1]
    loaded = load_mock_file(path, tmp_path, TemplateEngine())
    assert not loaded.problems and len(loaded.mocks) == 2
    job = next(m for m in loaded.mocks if m.name == "GET /job")
    view = RequestView("GET", "https", "api.test", 443, "/job")
    assert render(job.sequence[2], TemplateEngine(), view, {}).body == b'{"s": "b"}'


def test_ids_and_generalizing(tmp_path: Path) -> None:
    assert (
        is_id("42") and is_id("9f86d081884c7d65") and is_id("3f2b8c1e-9d4a-4e6b-8a7c-1b2c3d4e5f60")
    )
    assert not is_id("me") and not is_id("deadbeef") and not is_id("v2")
    session = Session(tmp_path, _rules(generalize=True))
    for path in ["/a/1/b/10", "/a/2/b/20", "/a/3/b/20"]:
        session.add(_ex(path, b"{}"))
    (doc,) = session.documents().values()
    assert [m["request"]["path"] for m in yaml.safe_load(doc)["mocks"]] == ["/a/{id}/b/{id2}"]


def test_large_and_binary_bodies_go_to_files(tmp_path: Path) -> None:
    session = Session(tmp_path, _rules(inline_limit=10))
    session.add(_ex("/big", b'{"text": "more than ten bytes"}'))
    session.add(_ex("/bin", b"\x00\x01\xff", response_headers=(("Content-Type", "image/png"),)))
    session.add(
        _ex("/yaml", b"a: 1\n" * 5, response_headers=(("Content-Type", "application/yaml"),))
    )
    session.flush()
    doc = yaml.safe_load(next(tmp_path.glob("*.yaml")).read_text())
    files = {m["request"]["path"]: m["response"]["body_file"] for m in doc["mocks"]}
    assert files["/big"].endswith(".json") and files["/bin"].endswith(".png")
    assert not files["/yaml"].endswith((".yaml", ".yml"))  # never loaded as a mock file
    assert (tmp_path / files["/bin"]).read_bytes() == b"\x00\x01\xff"
