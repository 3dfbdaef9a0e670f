"""Network data kept as mocks is kept as data (issue 13): an LLM's or an upstream's answer saved
by `ai.persist`, `X-MockBox-Persist`, the editor's Generate and "Save as mock", and HAR, OpenAPI
and WireMock imports, are served on the next request exactly as they were said. A header or body
holding `{{ ... }}`, `{% ... %}` or `{# ... #}` is text, never a template that runs.

(The recorder's end-to-end test is in test_record_replay.py; every writer's property test in
test_fuzz_persist.py.)"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import requests
import yaml

from .conftest import BIN, LLMServer, MockBox, MockBoxFactory, Upstream, clean_env, wait_until

# Each one would show that it ran: a computed value, a loop, a dropped comment, an escape cut
# short, a reach for the operating system.
HOSTILE_HEADERS = {
    "X-Tpl": "{{ 7*7 }}",
    "X-Stmt": "{% for i in range(3) %}x{% endfor %}",
    "X-Cmt": "a{# hidden #}b",
    "X-End": "{% endraw %}{{ 7*7 }}",
    "X-Os": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
}
HOSTILE_BODY = {
    "tpl": "{{ 7*7 }}",
    "stmt": "{% set n = 3 %}{{ n }}",
    "cmt": "{# gone? #}",
    "raw": "{% raw %}{{ 1 }}{% endraw %}{{ 2 }}",
    "list": ["{{ fake.name() }}", {"deep": "{%- if true -%}yes{%- endif -%}"}],
}


def _assert_literal(r: requests.Response, headers: dict[str, str] = HOSTILE_HEADERS) -> None:
    for name, value in headers.items():
        assert r.headers[name] == value, name


def _admin(box: MockBox, method: str, path: str, **kw: Any) -> requests.Response:
    with requests.Session() as s:
        s.trust_env = False
        return s.request(method, box.admin + path, timeout=30, **kw)


def _ai_box(mockbox: MockBoxFactory, tmp_path: Path, llm: LLMServer, **ai: Any) -> MockBox:
    mocks = tmp_path / "mocks"
    mocks.mkdir()
    config = tmp_path / "config.yaml"
    settings = {
        "provider": "openai",
        "base_url": f"{llm.url}/v1",
        "max_retries": 0,
        "timeout": 5,
        "stateful": False,
        **ai,
    }
    config.write_text(yaml.safe_dump({"unmatched": "ai", "ai": settings}))
    return mockbox(mocks, "--config", str(config), env=clean_env(OPENAI_API_KEY="sk-test-secret"))


def test_a_kept_ai_answer_is_served_as_the_model_wrote_it(
    mockbox: MockBoxFactory, tmp_path: Path, llm_server: LLMServer
) -> None:
    """`ai.persist: true` writes every answer; the editor's Generate drafts one to save."""
    answer = {"status": 200, "headers": HOSTILE_HEADERS, "body": HOSTILE_BODY, "explanation": "x"}
    text_answer = {**answer, "body": "{% for i in range(3) %}x{% endfor %}{{ 7*7 }}"}
    llm_server.script = [{"answer": answer}, {"answer": text_answer}]
    box = _ai_box(mockbox, tmp_path, llm_server, persist=True)
    first = box.get("http://api.kept.test/things/1")
    assert first.status_code == 200 and first.json() == HOSTILE_BODY
    generated = _admin(
        box, "POST", "/api/ai/generate", json={"method": "GET", "url": "http://api.kept.test/txt"}
    ).json()
    saved = _admin(
        box, "POST", "/api/mocks", json={"file": generated["file"], "yaml": generated["yaml"]}
    )
    assert saved.status_code == 201, saved.text
    wait_until(lambda: box.health()["mocks"]["loaded"] == 2, 10, "the kept answers")
    assert box.health()["mocks"]["problems"] == []

    again = box.get("http://api.kept.test/things/1")
    assert again.headers["X-MockBox-Source"] == "mock"
    assert again.json() == HOSTILE_BODY
    _assert_literal(again)
    drafted = box.get("http://api.kept.test/txt")
    assert drafted.headers["X-MockBox-Source"] == "mock"
    assert drafted.text == text_answer["body"]
    _assert_literal(drafted)
    assert len(llm_server.calls) == 2


def test_save_as_mock_keeps_an_upstreams_answer_as_data(
    mockbox: MockBoxFactory, tmp_path: Path, upstream: Upstream
) -> None:
    text = "Hello {{ 7*7 }} {% if true %}run{% endif %}{# c #}"
    upstream.routes["/page"] = (
        200,
        {**HOSTILE_HEADERS, "Content-Type": "text/plain"},
        text.encode(),
    )
    upstream.routes["/data"] = (
        200,
        {**HOSTILE_HEADERS, "Content-Type": "application/json"},
        json.dumps(HOSTILE_BODY).encode(),
    )
    mocks = tmp_path / "mocks"
    mocks.mkdir()
    box = mockbox(mocks, "--unmatched", "upstream")
    for path in ("/page", "/data"):
        assert box.get(f"{upstream.url}{path}").status_code == 200
    traffic = _admin(box, "GET", "/api/traffic").json()["traffic"]
    for entry in traffic:
        draft = _admin(box, "GET", f"/api/traffic/{entry['id']}/draft").json()
        saved = _admin(
            box, "POST", "/api/mocks", json={"file": draft["file"], "yaml": draft["yaml"]}
        )
        assert saved.status_code == 201, saved.text
    page, data = box.get(f"{upstream.url}/page"), box.get(f"{upstream.url}/data")
    assert {page.headers["X-MockBox-Source"], data.headers["X-MockBox-Source"]} == {"mock"}
    assert page.text == text and data.json() == HOSTILE_BODY
    _assert_literal(page)
    _assert_literal(data)
    assert upstream.count("/page") == 1 and upstream.count("/data") == 1


def _har(url: str) -> dict[str, Any]:
    headers = [{"name": k, "value": v} for k, v in HOSTILE_HEADERS.items()]
    entry = {
        "startedDateTime": "2024-01-01T00:00:00.000Z",
        "time": 1,
        "request": {
            "method": "GET",
            "url": url,
            "httpVersion": "HTTP/1.1",
            "headers": [{"name": "Authorization", "value": "Bearer {% raw %}"}],
            "queryString": [],
            "cookies": [],
            "headersSize": -1,
            "bodySize": 0,
        },
        "response": {
            "status": 200,
            "statusText": "OK {{ 7*7 }}",
            "httpVersion": "HTTP/1.1",
            "headers": [*headers, {"name": "Content-Type", "value": "application/json"}],
            "cookies": [],
            "content": {
                "size": 1,
                "mimeType": "application/json",
                "text": json.dumps(HOSTILE_BODY),
            },
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1,
        },
        "cache": {},
        "timings": {"send": 0, "wait": 1, "receive": 0},
    }
    return {"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": [entry]}}


def _wiremock(folder: Path) -> None:
    (folder / "mappings").mkdir(parents=True)
    (folder / "__files").mkdir()
    (folder / "__files" / "page.yaml").write_text(
        "mocks:\n  - request: {path: /evil}\n    response: {body: '{{ 7*7 }}'}\n"
    )
    stubs = {
        "json.json": {
            "request": {"method": "GET", "url": "/wm/json"},
            "response": {"status": 200, "headers": HOSTILE_HEADERS, "jsonBody": HOSTILE_BODY},
        },
        "file.json": {
            "request": {"method": "GET", "url": "/wm/file"},
            "response": {"status": 200, "bodyFileName": "page.yaml"},
        },
    }
    for name, stub in stubs.items():
        (folder / "mappings" / name).write_text(json.dumps(stub))


def _openapi() -> dict[str, Any]:
    media = "application/vnd.{{ 7*7 }}+json"
    return {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "servers": [{"url": "http://api.openapi.test"}],
        "paths": {
            "/oa": {
                "get": {
                    "operationId": "{{ 7*7 }}",
                    "responses": {
                        "200": {"description": "ok", "content": {media: {"example": HOSTILE_BODY}}}
                    },
                }
            }
        },
    }


def _import(*args: str) -> None:
    done = subprocess.run(
        [str(BIN / "mockbox"), "import", *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_imports_write_what_the_documents_say_as_data(
    mockbox: MockBoxFactory, tmp_path: Path
) -> None:
    """HAR, WireMock and OpenAPI files come from elsewhere: their text is served as written, and
    a WireMock body file named like a mock file is never loaded as one."""
    mocks = tmp_path / "mocks"
    har = tmp_path / "session.har"
    har.write_text(json.dumps(_har("http://api.har.test/h")))
    _import("har", str(har), "--out", str(mocks / "har"))
    _wiremock(tmp_path / "wm")
    _import("wiremock", str(tmp_path / "wm"), "--out", str(mocks / "wm"))
    spec = tmp_path / "api.yaml"
    spec.write_text(yaml.safe_dump(_openapi()))
    _import("openapi", str(spec), "--out", str(mocks / "openapi"))

    box = mockbox(mocks, "--unmatched", "404")
    health = box.health()
    assert health["mocks"]["problems"] == [] and health["mocks"]["loaded"] == 4  # no /evil

    from_har = box.get("http://api.har.test/h")
    # The client's credential, "{% raw %}", is redacted wherever it shows; what is left is text.
    redacted = {**HOSTILE_BODY, "raw": "REDACTED{{ 1 }}{% endraw %}{{ 2 }}"}
    assert from_har.json() == redacted and from_har.reason == "OK"
    _assert_literal(from_har)
    from_wm = box.get("http://api.any.test/wm/json")
    assert from_wm.json() == HOSTILE_BODY
    _assert_literal(from_wm)
    page = box.get("http://api.any.test/wm/file")
    assert page.text == (tmp_path / "wm" / "__files" / "page.yaml").read_text()
    assert box.get("http://api.any.test/evil").status_code == 404
    from_oa = box.get("http://api.openapi.test/oa")
    assert from_oa.headers["Content-Type"] == "application/vnd.{{ 7*7 }}+json"
    assert from_oa.json() == HOSTILE_BODY


def test_stateful_resources_are_served_as_data(mockbox: MockBoxFactory, tmp_path: Path) -> None:
    """What a synthesized POST created is kept as data (ai.stateful) and served as it came."""
    mocks = tmp_path / "mocks"
    mocks.mkdir()
    (mocks / "shop.yaml").write_text(
        "mocks:\n  - request: {method: GET, host: api.state.test, path: /users/1}\n"
        "    response: {body: {id: 1, name: Ada}}\n"
    )
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"unmatched": "ai", "ai": {"provider": "offline"}}))
    box = mockbox(mocks, "--config", str(config))
    session = {"X-MockBox-Session": "s1"}
    sent = {"name": "{{ 7*7 }}", "note": "{% for i in range(3) %}x{% endfor %}"}
    created = box.request("POST", "http://api.state.test/users", json=sent, headers=session)
    assert created.status_code == 201
    user = created.json()
    assert {k: user[k] for k in sent} == sent
    fetched = box.get(f"http://api.state.test/users/{user['id']}", headers=session)
    assert fetched.json() == user
    changed = {"name": "{# gone? #}{{ 6*7 }}"}
    patched = box.request(
        "PATCH", f"http://api.state.test/users/{user['id']}", json=changed, headers=session
    )
    assert patched.json() == {**user, **changed}
