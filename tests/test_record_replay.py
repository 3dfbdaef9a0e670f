"""`mockbox record` against a real upstream, then `mockbox replay` with the upstream gone."""

from __future__ import annotations

import json
import time
from pathlib import Path

import requests
import yaml

from .conftest import Canary, MockBox, MockBoxFactory, Upstream, wait_until

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


def test_recording_a_login_writes_no_secret_and_replays_any_password(
    mockbox: MockBoxFactory, upstream: Upstream, tmp_path: Path
) -> None:
    """A login answers tokens; later calls carry them in headers the old list did not know,
    JSON and form bodies carry passwords and client secrets. Nothing of it reaches disk, and
    no matcher is written from a redacted value: replay takes any password."""
    secrets = {
        "password": "pw-Login-Password-01",
        "client_secret": "cs-Client-Secret-02",
        "access_token": "at-Access-Token-03",
        "refresh_token": "rt-Refresh-Token-04",
        "id_token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        "cookie": "ck-Session-Cookie-05",
        "github": "ghp_GithubToken06abcdefghijkl",
        "private": "pt-Private-Token-07",
        "user_key": "uk-User-Api-Key-08",
        "webhook": "wh-Webhook-Secret-09",
        "session_id": "sid-Session-Id-10",
    }
    token_answer = {
        "access_token": secrets["access_token"],
        "refresh_token": secrets["refresh_token"],
        "id_token": secrets["id_token"],
        "token_type": "Bearer",
        "expires_in": 3600,
    }
    upstream.routes["/oauth/token"] = (
        200,
        {
            "Content-Type": "application/json",
            "Set-Cookie": f"session={secrets['cookie']}; Path=/; HttpOnly",
        },
        json.dumps(token_answer).encode(),
    )
    me = {"id": 1, "name": "Ann", "api_key": secrets["user_key"]}
    me["settings"] = {"webhook_secret": secrets["webhook"], "theme": "dark"}
    upstream.routes["/me"] = (200, {"Content-Type": "application/json"}, json.dumps(me).encode())
    mocks = tmp_path / "mocks"
    recorder = mockbox(mocks, "--session", "login", command="record")
    with recorder.client() as s:
        form = {"grant_type": "password", "username": "ann", "password": secrets["password"]}
        form["client_secret"] = secrets["client_secret"]
        assert s.post(f"{upstream.url}/oauth/token", data=form, timeout=10).json() == token_answer
        login = {"user": "ann", "password": secrets["password"], "remember": True}
        login["session_id"] = secrets["session_id"]
        s.post(f"{upstream.url}/api/login", json=login, timeout=10)  # echoed back
        s.headers["Authorization"] = f"Bearer {secrets['access_token']}"
        s.headers["X-GitHub-Token"] = secrets["github"]
        s.headers["Private-Token"] = secrets["private"]
        assert s.get(f"{upstream.url}/me", timeout=10).json() == me
    recorder.stop()

    folder = mocks / "recorded" / "login"
    written = b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())
    assert [k for k, v in secrets.items() if v.encode() in written] == []
    doc = yaml.safe_load(next(folder.glob("*.yaml")).read_text())
    by_name = {m["name"]: m for m in doc["mocks"]}
    token = by_name["POST /oauth/token"]
    assert "body" not in token["request"]  # a form with secrets is not matched
    assert token["response"]["body"] == {
        "access_token": "REDACTED",
        "refresh_token": "REDACTED",
        "id_token": "REDACTED",
        "token_type": "Bearer",
        "expires_in": 3600,
    }
    assert token["response"]["headers"]["Set-Cookie"] == "session=REDACTED; Path=/; HttpOnly"
    logged_in = by_name["POST /api/login"]
    assert logged_in["request"]["body"] == {"json_includes": {"user": "ann", "remember": True}}
    assert by_name["GET /me"]["response"]["body"] == {
        "id": 1,
        "name": "Ann",
        "api_key": "REDACTED",
        "settings": {"webhook_secret": "REDACTED", "theme": "dark"},
    }

    upstream.server.shutdown()
    upstream.server.server_close()
    replay = mockbox(mocks, "--session", "login", command="replay")
    other = {"grant_type": "password", "username": "bob", "password": "another one"}
    again = replay.request("POST", f"{upstream.url}/oauth/token", data=other)
    assert again.headers["X-MockBox-Source"] == "mock"
    assert again.json()["access_token"] == "REDACTED"
    relogin = {"user": "ann", "password": "changed", "remember": True, "session_id": "x"}
    echoed = replay.request("POST", f"{upstream.url}/api/login", json=relogin)
    assert echoed.headers["X-MockBox-Source"] == "mock"
    assert json.loads(echoed.json()["echo"]["body"])["password"] == "REDACTED"
    assert (
        replay.request("POST", f"{upstream.url}/api/login", json={"user": "bob"}).status_code == 404
    )


def test_redacting_a_large_recorded_answer_keeps_other_clients_served(
    mockbox: MockBoxFactory, upstream: Upstream, tmp_path: Path
) -> None:
    """A 4 MB JSON answer with thousands of secret fields is walked off the event loop: a
    canary client recorded meanwhile never waits."""
    users = [
        {"id": i, "name": f"user {i}", "api_key": f"uk-{i:012d}", "tags": ["a", "b"]}
        for i in range(50_000)
    ]
    big = json.dumps(users).encode()
    assert len(big) > 4_000_000
    upstream.routes["/users"] = (200, {"Content-Type": "application/json"}, big)
    upstream.routes["/ping"] = (200, {"Content-Type": "application/json"}, b'{"ok": true}')
    mocks = tmp_path / "mocks"
    recorder = mockbox(mocks, "--session", "big", command="record")
    with Canary(recorder, f"{upstream.url}/ping") as canary:
        with recorder.client() as s:
            for _ in range(3):
                assert len(s.get(f"{upstream.url}/users", timeout=60).content) == len(big)
        time.sleep(1)  # and a flush of the 4 MB body file meanwhile
    canary.assert_never_waited()
    recorder.stop()
    written = b"".join(p.read_bytes() for p in (mocks / "recorded" / "big").rglob("*.json"))
    assert b"uk-000000012345" not in written and written.count(b"REDACTED") == 50_000
    print(f"canary worst wait {canary.worst * 1000:.0f} ms over {len(canary.waits)} requests")


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
