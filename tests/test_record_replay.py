"""`mockbox record` against a real upstream, then `mockbox replay` with the upstream gone."""

from __future__ import annotations

import json
from pathlib import Path

import requests
import yaml

from .conftest import MockBox, MockBoxFactory, Upstream, wait_until

SECRETS = {
    "Authorization": "Bearer sk-live-TOKEN-0001",
    "X-Api-Key": "APIKEY-HEADER-0002",
    "Cookie": "sid=COOKIE-SESSION-0003; theme=dark",
}
QUERY_SECRET = "QUERY-SECRET-0004"
SET_COOKIE_SECRET = "SERVER-COOKIE-0005"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def _serve_routes(upstream: Upstream) -> None:
    upstream.routes["/api/users/1"] = (
        200,
        {"Content-Type": "application/json", "X-Trace": "t1"},
        json.dumps(
            {"id": 1, "name": "Ada", "tags": ["admin"], "greeting": "Hi {{ name }}"}
        ).encode(),
    )
    upstream.routes["/login"] = (
        200,
        {
            "Content-Type": "text/plain",
            "Set-Cookie": f"session={SET_COOKIE_SECRET}; Path=/; HttpOnly",
        },
        b"welcome",
    )
    upstream.routes["/logo.png"] = (200, {"Content-Type": "image/png"}, PNG)
    upstream.routes["/jobs/7"] = (200, {"Content-Type": "application/json"}, b'{"state": "queued"}')


def _exercise(box: MockBox, upstream: Upstream) -> dict[str, requests.Response]:
    """The app's session: every request carries secrets; the job answers change between calls."""
    seen: dict[str, requests.Response] = {}
    with box.client() as s:
        s.headers.update(SECRETS)

        def get(key: str, path: str, **kw: object) -> None:
            seen[key] = s.get(f"{upstream.url}{path}", timeout=10, **kw)  # type: ignore[arg-type]

        get("user", "/api/users/1")
        get("user again", "/api/users/1")  # the same answer: written once
        get("login", "/login")
        get("logo", "/logo.png")
        get("echo", "/echo", params={"q": "dune", "api_key": QUERY_SECRET})
        seen["post"] = s.post(f"{upstream.url}/api/orders", json={"book": 42}, timeout=10)
        get("job 1", "/jobs/7")
        upstream.routes["/jobs/7"] = (
            200,
            {"Content-Type": "application/json"},
            b'{"state": "running"}',
        )
        get("job 2", "/jobs/7")
        upstream.routes["/jobs/7"] = (
            200,
            {"Content-Type": "application/json"},
            b'{"state": "done"}',
        )
        get("job 3", "/jobs/7")
        get("job 4", "/jobs/7")
        get("missing", "/status/404")
    return seen


def test_record_then_replay_offline(
    mockbox: MockBoxFactory, upstream: Upstream, tmp_path: Path
) -> None:
    mocks = tmp_path / "mocks"
    _serve_routes(upstream)
    recorder = mockbox(mocks, "--session", "shop", command="record")
    recorded = _exercise(recorder, upstream)
    assert all(r.headers["X-MockBox-Source"] == "upstream" for r in recorded.values())
    assert recorded["echo"].json()["echo"]["headers"]["Authorization"] == SECRETS["Authorization"]

    folder = mocks / "recorded" / "shop"
    host_file = folder / f"127.0.0.1_{upstream.port}.yaml"
    # Written as it goes: the file is there, complete, while the recorder still runs.
    wait_until(lambda: host_file.exists() and "/jobs/7" in host_file.read_text(), 10, "flush")
    wait_until(lambda: "recording 11 requests" in recorder.log(), 10, "live count")
    assert f"127.0.0.1_{upstream.port} 11" in recorder.log()
    recorder.stop()
    assert "recorded 11 requests" in recorder.log()

    written = b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())
    for secret in [
        *SECRETS.values(),
        "COOKIE-SESSION-0003",
        "sk-live-TOKEN-0001",
        QUERY_SECRET,
        SET_COOKIE_SECRET,
    ]:
        assert secret.encode() not in written, secret
    doc = yaml.safe_load(host_file.read_text())
    by_name = {m["name"]: m for m in doc["mocks"]}
    user = by_name["GET /api/users/1"]
    assert user["response"]["body"]["tags"] == ["admin"]  # JSON written as a YAML mapping
    assert "Date" not in user["response"]["headers"]
    assert by_name["GET /echo?q=dune"]["request"]["query"] == {"q": "dune"}  # api_key left out
    assert by_name["POST /api/orders"]["request"]["body"] == {"json": {"book": 42}}
    job = by_name["GET /jobs/7"]["responses"]
    assert [r["body"]["state"] for r in job] == ["queued", "running", "done"]
    logo = by_name["GET /logo.png"]["response"]["body_file"]
    assert (folder / logo).read_bytes() == PNG and logo.endswith(".png")
    assert "session=REDACTED; Path=/; HttpOnly" in host_file.read_text()

    upstream.server.shutdown()
    upstream.server.server_close()
    replay = mockbox(mocks, "--session", "shop", command="replay")
    replayed = _exercise(replay, upstream)
    for key in ("user", "user again", "logo", "job 1", "job 2", "job 3", "job 4", "missing"):
        want, got = recorded[key], replayed[key]
        assert got.headers["X-MockBox-Source"] == "mock", key
        assert (got.status_code, got.content) == (want.status_code, want.content), key
        if "Content-Type" in want.headers:
            assert got.headers["Content-Type"] == want.headers["Content-Type"], key
    assert replayed["user"].json()["greeting"] == "Hi {{ name }}"  # never run as a template
    assert replayed["login"].text == "welcome"
    assert replayed["login"].headers["Set-Cookie"] == "session=REDACTED; Path=/; HttpOnly"
    post = replayed["post"].json()["echo"]  # echoes carried the secrets; the copies do not
    assert (post["body"], post["headers"]["Cookie"]) == ('{"book": 42}', "REDACTED")
    echo = replayed["echo"].json()["echo"]
    assert echo["headers"]["Authorization"] == "REDACTED"
    assert echo["path"] == "/echo?q=dune&api_key=REDACTED"

    # Strict: anything not recorded gets the 404 naming the nearest recorded requests.
    miss = replay.get(f"{upstream.url}/api/users/2")
    assert miss.status_code == 404 and miss.json()["error"] == "NO_MOCK_MATCHED"
    assert miss.json()["nearest"][0]["mock"] == "GET /api/users/1"


def test_record_generalize(mockbox: MockBoxFactory, upstream: Upstream, tmp_path: Path) -> None:
    mocks = tmp_path / "mocks"
    recorder = mockbox(mocks, "--session", "ids", "--generalize", command="record")
    uuids = ["3f2b8c1e-9d4a-4e6b-8a7c-1b2c3d4e5f60", "7a1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"]
    paths = [
        "/users/1",
        "/users/2",
        "/users/3",
        "/users/me",
        f"/files/{uuids[0]}",
        f"/files/{uuids[1]}",
        "/commits/9f86d081884c7d65",
        "/orders/5",
    ]
    for path in paths:
        assert recorder.get(f"{upstream.url}{path}").status_code == 200
    recorder.stop()
    doc = yaml.safe_load(next((mocks / "recorded" / "ids").glob("*.yaml")).read_text())
    assert sorted(m["request"]["path"] for m in doc["mocks"]) == [
        "/commits/9f86d081884c7d65",  # seen once: kept as seen
        "/files/{id}",
        "/orders/5",
        "/users/me",  # not an id: stays literal, and wins over /users/{id}
        "/users/{id}",
    ]
    upstream.server.shutdown()
    upstream.server.server_close()
    replay = mockbox(mocks, "--session", "ids", command="replay")
    example = replay.get(f"{upstream.url}/users/42").json()
    assert example["echo"]["path"] == "/users/1"  # one example body per template
    assert replay.get(f"{upstream.url}/users/me").json()["echo"]["path"] == "/users/me"
    assert replay.get(f"{upstream.url}/files/{uuids[1]}").status_code == 200


def test_record_from_stock_mitmdump(
    mockbox: MockBoxFactory, upstream: Upstream, tmp_path: Path
) -> None:
    mocks = tmp_path / "mocks"
    (mocks / "api.yaml").parent.mkdir(parents=True)
    (mocks / "api.yaml").write_text(
        "mocks:\n  - request: {path: /hello}\n    response: {body: mocked}\n"
    )
    box = mockbox(mocks, "--set", "mockbox_record=stock", stock=True)
    r = box.get(f"{upstream.url}/hello")
    assert r.json()["upstream"] is True  # the mock layer does not answer while recording
    box.stop()
    text = (mocks / "recorded" / "stock" / f"127.0.0.1_{upstream.port}.yaml").read_text()
    assert "path: /hello" in text


def test_record_refuses_an_existing_session(mockbox: MockBoxFactory, tmp_path: Path) -> None:
    mocks = tmp_path / "mocks"
    (mocks / "recorded" / "old").mkdir(parents=True)
    (mocks / "recorded" / "old" / "a.yaml").write_text("mocks: []\n")
    box = mockbox(mocks, "--session", "old", command="record", wait=False)
    assert box.proc.wait(timeout=30) == 2
    assert "session 'old' already exists" in box.log()


def test_record_and_replay_in_reverse_mode(
    mockbox: MockBoxFactory, upstream: Upstream, tmp_path: Path
) -> None:
    mocks = tmp_path / "mocks"
    mode = f"reverse:{upstream.url}"
    recorder = mockbox(mocks, "--session", "rev", "--mode", mode, command="record")
    direct = requests.get(f"http://127.0.0.1:{recorder.port}/v1/things?x=1", timeout=10)
    assert direct.json()["echo"]["path"] == "/v1/things?x=1"
    recorder.stop()
    upstream.server.shutdown()
    upstream.server.server_close()
    replay = mockbox(mocks, "--session", "rev", "--mode", mode, command="replay")
    again = requests.get(f"http://127.0.0.1:{replay.port}/v1/things?x=1", timeout=10)
    assert again.headers["X-MockBox-Source"] == "mock" and again.json() == direct.json()


HOSTILE_HEADERS = {
    "X-Tpl": "{{ 7*7 }}",
    "X-Stmt": "{% for i in range(3) %}x{% endfor %}",
    "X-Cmt": "a{# hidden #}b",
    "X-End": "{% endraw %}{{ 7*7 }}",
}


def test_recorded_answers_are_replayed_as_data(
    mockbox: MockBoxFactory, upstream: Upstream, tmp_path: Path
) -> None:
    """An upstream's headers and bodies are text, even when they look like templates, and even
    when a client's credential spells part of the escape that keeps them text (redaction runs
    over what is written: it must not be able to take the escape apart)."""
    body = {"tpl": "{{ 7*7 }}", "stmt": "{% set n = 3 %}{{ n }}", "cmt": "{# c #}"}
    text = "{% for i in range(3) %}x{% endfor %}{{ 7*7 }}"
    upstream.routes["/json"] = (
        200,
        {**HOSTILE_HEADERS, "Content-Type": "application/json"},
        json.dumps(body).encode(),
    )
    upstream.routes["/text"] = (
        200,
        {**HOSTILE_HEADERS, "Content-Type": "text/plain"},
        text.encode(),
    )
    mocks = tmp_path / "mocks"
    recorder = mockbox(mocks, "--session", "hostile", command="record")
    credential = {"Authorization": "Bearer {% raw %}", "X-Api-Key": "{% endraw %}"}
    for path in ("/json", "/text"):
        assert recorder.get(f"{upstream.url}{path}", headers=credential).status_code == 200
    recorder.stop()
    upstream.server.shutdown()
    upstream.server.server_close()

    replay = mockbox(mocks, "--session", "hostile", command="replay")
    assert replay.health()["mocks"]["problems"] == []
    as_json, as_text = replay.get(f"{upstream.url}/json"), replay.get(f"{upstream.url}/text")
    for r in (as_json, as_text):
        assert r.headers["X-MockBox-Source"] == "mock"
        for name, value in HOSTILE_HEADERS.items():
            assert r.headers[name] == value.replace("{% endraw %}", "REDACTED"), name
    assert as_json.json() == body and as_text.text == text
