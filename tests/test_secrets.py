"""Secrets through a real `mockbox run`: what the traffic API shows and drafts, what a prompt
sends to an LLM (captured by the local OpenAI-protocol server), and what a provider's error
that quotes a key turns into for the client, the traffic log, the log and /metrics."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl

import yaml

from .conftest import LLMServer, MockBoxFactory, Upstream
from .test_ai import GOOD, openai_box, start
from .test_editor_api import Admin

PASSWORD = "pw-Hunter2-0001"
CLIENT_SECRET = "cs-Client-Secret-0002"
ACCESS_TOKEN = "at-Access-Token-0003"
REFRESH_TOKEN = "rt-Refresh-Token-0004"
API_KEY = "ak-Query-Api-Key-0005"
GITHUB_TOKEN = "ghp_GithubToken0006abcdefghij"
PRIVATE_TOKEN = "pt-Private-Token-0007"
SESSION_ID = "sess-Session-Id-0008"
NESTED_SECRET = "ns-Nested-Secret-0009"
COOKIE = "ck-Cookie-Value-0010"
ALL = [
    PASSWORD,
    CLIENT_SECRET,
    ACCESS_TOKEN,
    REFRESH_TOKEN,
    API_KEY,
    GITHUB_TOKEN,
    PRIVATE_TOKEN,
    SESSION_ID,
    NESTED_SECRET,
    COOKIE,
]


def _leaks(text: str) -> list[str]:
    return [s for s in ALL if s in text]


def test_traffic_api_shows_and_drafts_no_secret(
    mockbox: MockBoxFactory, upstream: Upstream, tmp_path: Path
) -> None:
    upstream.routes["/oauth/token"] = (
        200,
        {"Content-Type": "application/json", "Set-Cookie": f"sid={COOKIE}; Path=/; HttpOnly"},
        json.dumps(
            {
                "access_token": ACCESS_TOKEN,
                "refresh_token": REFRESH_TOKEN,
                "token_type": "Bearer",
                "expires_in": 3600,
            }
        ).encode(),
    )
    box = mockbox(tmp_path / "mocks", "--unmatched", "upstream")
    admin = Admin(box)
    form = {"grant_type": "password", "username": "ann", "password": PASSWORD}
    form["client_secret"] = CLIENT_SECRET
    assert box.request("POST", f"{upstream.url}/oauth/token", data=form).status_code == 200
    secret_headers = {
        "Authorization": f"Bearer {ACCESS_TOKEN}",
        "X-GitHub-Token": GITHUB_TOKEN,
        "Private-Token": PRIVATE_TOKEN,
    }
    search = box.get(f"{upstream.url}/search?q=books&api_key={API_KEY}", headers=secret_headers)
    assert API_KEY in search.text  # the upstream echoes everything it was sent
    profile = {"name": "ann", "settings": {"api": {"client_secret": NESTED_SECRET}}}
    box.request("POST", f"{upstream.url}/profile", json={**profile, "session_id": SESSION_ID})

    listed = admin("GET", "/api/traffic").json()["traffic"]
    assert _leaks(json.dumps(listed)) == []
    by_path = {t["url"].split("/", 3)[3].partition("?")[0]: t for t in listed}
    assert by_path["search"]["url"] == f"{upstream.url}/search?q=books&api_key=REDACTED"
    # The search sees what the list shows: a secret cannot be guessed through it.
    assert admin("GET", "/api/traffic", params={"q": API_KEY}).json()["traffic"] == []
    assert len(admin("GET", "/api/traffic", params={"q": "q=books"}).json()["traffic"]) == 1

    for entry in listed:
        shown = admin("GET", f"/api/traffic/{entry['id']}").json()
        assert _leaks(json.dumps(shown)) == [], entry["url"]
    login = admin("GET", f"/api/traffic/{by_path['oauth/token']['id']}").json()
    assert dict(parse_qsl(login["request"]["body"])) == {
        "grant_type": "password",
        "username": "ann",
        "password": "REDACTED",
        "client_secret": "REDACTED",
    }
    assert json.loads(login["response"]["body"]) == {
        "access_token": "REDACTED",
        "refresh_token": "REDACTED",
        "token_type": "Bearer",
        "expires_in": 3600,
    }
    assert ["Set-Cookie", "sid=REDACTED; Path=/; HttpOnly"] in login["response"]["headers"]
    echoed = json.loads(
        admin("GET", f"/api/traffic/{by_path['search']['id']}").json()["response"]["body"]
    )
    assert echoed["echo"]["headers"]["X-GitHub-Token"] == "REDACTED"  # a copy, found by value
    assert echoed["echo"]["path"] == "/search?q=books&api_key=REDACTED"

    # "Save as mock" matches on no secret and answers none; the saved mock serves.
    draft = admin("GET", f"/api/traffic/{by_path['search']['id']}/draft").json()
    assert draft["mock"]["request"]["query"] == {"q": "books"}
    assert _leaks(draft["yaml"]) == []
    token_draft = admin("GET", f"/api/traffic/{by_path['oauth/token']['id']}/draft").json()
    assert token_draft["mock"]["response"]["body"]["access_token"] == "REDACTED"
    assert "Set-Cookie" not in token_draft["mock"]["response"].get("headers", {})
    assert _leaks(token_draft["yaml"]) == []
    saved = admin("POST", "/api/mocks", json={"file": draft["file"], "yaml": draft["yaml"]})
    assert saved.status_code == 201, saved.text
    again = box.get(f"{upstream.url}/search?q=books&api_key=another-key")
    assert again.headers["X-MockBox-Source"] == "mock"


def test_prompt_carries_no_query_body_or_header_secret(
    mockbox: MockBoxFactory, tmp_path: Path, llm_server: LLMServer
) -> None:
    llm_server.script = [{"answer": GOOD}]
    box = openai_box(mockbox, tmp_path, llm_server, persist=True)
    body = {
        "name": "ann",
        "credentials": {"password": PASSWORD, "otp": 123456},
        "profile": {"refreshToken": REFRESH_TOKEN, "tags": ["a", "b"]},
    }
    headers = {"X-GitHub-Token": GITHUB_TOKEN, "Cookie": f"sid={COOKIE}"}
    r = box.request(
        "POST", f"http://api.shop.test/users?api_key={API_KEY}&page=2", json=body, headers=headers
    )
    assert r.status_code == 200, r.text
    (call,) = llm_server.calls
    assert _leaks(json.dumps(call["body"])) == []
    prompt = json.loads(call["body"]["messages"][1]["content"])["request"]
    assert prompt["url"] == "http://api.shop.test/users?api_key=REDACTED&page=2"
    assert prompt["query"] == {"page": "2"}
    assert prompt["body"] == {
        "name": "ann",
        "credentials": {"password": "REDACTED", "otp": "REDACTED"},
        "profile": {"refreshToken": "REDACTED", "tags": ["a", "b"]},
    }
    assert prompt["headers"]["x-github-token"] == "REDACTED"
    assert prompt["headers"]["cookie"] == "sid=REDACTED"
    # The answer kept as a mock (ai.persist) matches on no secret either.
    kept = tmp_path / "mocks" / "generated" / "api.shop.test.yaml"
    assert _leaks(kept.read_text()) == []
    (mock,) = yaml.safe_load(kept.read_text())["mocks"]
    assert mock["request"]["query"] == {"page": "2"}
    assert _leaks(box.log()) == []


def test_a_provider_error_quoting_a_key_reaches_no_one(
    mockbox: MockBoxFactory, tmp_path: Path, llm_server: LLMServer
) -> None:
    configured = "cfg-Provider-Key-0011"  # no known shape: found because it is the key in use
    others = ["sk-proj-Abc123XYZ789abcdefGHI", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"]
    llm_server.script = [
        {
            "status": 401,
            "message": f"Incorrect API key provided: Bearer {configured}. "
            f"Also seen: {others[0]}, {others[1]}, api_key={API_KEY}",
        }
    ]
    ai = {"provider": "openai", "base_url": f"{llm_server.url}/v1", "max_retries": 0}
    box = start(mockbox, tmp_path, {**ai, "timeout": 5}, {"OPENAI_API_KEY": configured})
    r = box.get("http://api.shop.test/users/9")
    assert r.status_code == 502 and r.json()["error"] == "AI_PROVIDER_ERROR"
    message = r.json()["message"]
    assert "HTTP 401" in message and "Incorrect API key provided" in message  # still useful
    assert llm_server.calls[0]["headers"]["authorization"] == f"Bearer {configured}"
    secrets = [configured, *others, API_KEY]
    admin = Admin(box)
    (entry,) = admin("GET", "/api/traffic").json()["traffic"]
    shown = json.dumps(admin("GET", f"/api/traffic/{entry['id']}").json())
    for where, text in [("answer", r.text), ("traffic", shown), ("metrics", box.metrics())]:
        assert [s for s in secrets if s in text] == [], where
    assert [s for s in secrets if s in box.log()] == []


def test_answers_too_large_to_keep_leave_no_secret_in_the_log_or_the_recording(
    mockbox: MockBoxFactory, upstream: Upstream, tmp_path: Path
) -> None:
    """The cache and the recorder log the URL of an answer over their cap, and the recording
    lists it in its header comment: no secret query value in the log, no token the session
    knows in the listed path."""
    big = b"x" * 4096
    headers = {"Content-Type": "application/octet-stream", "Cache-Control": "max-age=60"}
    export, file = f"/export?api_key={API_KEY}", f"/files/{ACCESS_TOKEN}"
    upstream.routes[export] = upstream.routes[file] = (200, headers, big)
    upstream.routes["/me"] = (200, {"Content-Type": "application/json"}, b'{"id": 1}')
    config = tmp_path / "config.yaml"
    caps = {"record": {"max_body_bytes": 1024}, "cache": {"max_body_bytes": 1024}}
    config.write_text(yaml.safe_dump(caps))

    cache = mockbox(tmp_path / "cached", "--unmatched", "upstream", "--config", str(config))
    assert cache.get(upstream.url + export).content == big
    cache.stop()
    assert "not caching" in cache.log() and _leaks(cache.log()) == []

    mocks = tmp_path / "mocks"
    recorder = mockbox(mocks, "--session", "caps", "--config", str(config), command="record")
    with recorder.client() as s:
        s.headers["Authorization"] = f"Bearer {ACCESS_TOKEN}"  # first seen with `file` itself
        for path in (export, file, "/me"):
            assert s.get(upstream.url + path, timeout=10).status_code == 200
    recorder.stop()
    assert "not recording" in recorder.log() and _leaks(recorder.log()) == []
    (written,) = (mocks / "recorded" / "caps").glob("*.yaml")
    text = written.read_text()
    assert "#   GET /files/REDACTED (4096 bytes)" in text and _leaks(text) == []
