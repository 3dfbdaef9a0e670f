"""The editor's admin API on a real `mockbox run`: mocks (ETag / If-Match, checks, comments
kept, paths kept inside the folder, reload at once), traffic, AI generate and improve, the
token and the cross-site guard. Results are checked through the proxy."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import requests
import yaml

from .conftest import LLMServer, MockBox, MockBoxFactory, clean_env, write_mocks

SHOP = """\
# Shop mocks: this header comment stays.
mocks:
  # The list of users.
  - name: list users
    request: {method: GET, host: api.shop.test, path: /users}
    response:
      body: [{id: 1, name: foo, email: a@b.co}]   # inline comment stays

  # One user.
  - name: get user
    request: {method: GET, host: api.shop.test, path: "/users/{id}"}
    response:
      body: {id: "{{ path.id | int }}", name: foo}
# Footer comment stays.
"""


class Admin:
    """A plain HTTP client of the admin port (no proxy), as a script would be."""

    def __init__(self, box: MockBox, token: str | None = None) -> None:
        self.base = box.admin
        self.s = requests.Session()
        self.s.trust_env = False
        if token:
            self.s.headers["Authorization"] = f"Bearer {token}"

    def __call__(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.s.request(method, self.base + path, timeout=kw.pop("timeout", 15), **kw)


def start(
    mockbox: MockBoxFactory,
    tmp_path: Path,
    config: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    files: dict[str, str] | None = None,
) -> tuple[MockBox, Path]:
    mocks = tmp_path / "mocks"
    for name, text in {"shop.yaml": SHOP, **(files or {})}.items():
        write_mocks((mocks / name).parent, Path(name).name, text)
    cfg = tmp_path / "config.yaml"
    # Reloading by interval is off: every change seen below comes from the write's own reload.
    cfg.write_text(
        yaml.safe_dump({"unmatched": "404", "reload": {"interval": 0}, **(config or {})})
    )
    box = mockbox(mocks, "--config", str(cfg), env=clean_env(**(env or {})))
    return box, mocks


def test_list_and_search(mockbox: MockBoxFactory, tmp_path: Path) -> None:
    pay = "mocks:\n  - request: {method: POST, path: /pay}\n    response: {status: 201}\n"
    box, _ = start(mockbox, tmp_path, files={"sub/pay.yaml": pay, "broken.yaml": "mocks: [\n"})
    admin = Admin(box)
    listed = admin("GET", "/api/mocks").json()
    assert listed["files"] == ["shop.yaml", "sub/pay.yaml"]
    (problem,) = listed["problems"]
    assert problem["file"] == "broken.yaml" and problem["line"] == 2
    ids = [m["id"] for m in listed["mocks"]]
    assert "shop.yaml/0" in ids and "shop.yaml/1" in ids
    first = listed["mocks"][ids.index("shop.yaml/1")]
    assert first["name"] == "get user" and first["methods"] == ["GET"]
    assert first["host"] == "api.shop.test" and first["path"] == "/users/{id}"
    assert first["line"] == 10 and first["status"] == 200

    def search(query: str) -> list[str]:
        return [m["id"] for m in admin("GET", f"/api/mocks?{query}").json()["mocks"]]

    assert search("q=get+%7Bid%7D") == ["shop.yaml/1"]  # every word matches somewhere
    assert search("method=post") == ["sub/pay.yaml/0"]
    assert search("path=%7Bid%7D") == ["shop.yaml/1"]
    assert search("host=shop&name=list") == ["shop.yaml/0"]
    assert search("file=shop.yaml&limit=1") == ["shop.yaml/0"]
    assert admin("GET", "/api/mocks?limit=1").json()["total"] == len(search(""))
    assert admin("GET", "/api/mocks?limit=x").status_code == 400


def test_edit_with_etags_comments_kept_served_at_once(
    mockbox: MockBoxFactory, tmp_path: Path
) -> None:
    box, mocks = start(mockbox, tmp_path)
    admin = Admin(box)
    got = admin("GET", "/api/mocks/shop.yaml/1")
    assert got.status_code == 200
    mock = got.json()
    etag = got.headers["ETag"]
    assert mock["etag"] == etag and mock["line"] == 10
    assert mock["yaml"].startswith("# One user.\nname: get user\n")
    assert mock["mock"]["response"]["body"]["name"] == "foo"

    edited = mock["yaml"].replace("name: foo}", "name: edited}  # my comment")
    no_precondition = admin("PUT", "/api/mocks/shop.yaml/1", json={"yaml": edited})
    assert no_precondition.status_code == 428
    assert no_precondition.json()["error"] == "IF_MATCH_REQUIRED"

    saved = admin(
        "PUT", "/api/mocks/shop.yaml/1", json={"yaml": edited}, headers={"If-Match": etag}
    )
    assert saved.status_code == 200, saved.text
    assert saved.headers["ETag"] != etag
    # Served at once: the write reloads (interval reloading is off in this config).
    assert box.get("http://api.shop.test/users/5").json() == {"id": 5, "name": "edited"}
    text = (mocks / "shop.yaml").read_text()
    assert text == SHOP.replace("name: foo}", "name: edited}  # my comment")

    stale = admin(
        "PUT", "/api/mocks/shop.yaml/1", json={"yaml": mock["yaml"]}, headers={"If-Match": etag}
    )
    assert stale.status_code == 412
    conflict = stale.json()
    assert conflict["error"] == "CONFLICT" and "changed by someone else" in conflict["message"]
    assert conflict["current"]["etag"] == saved.headers["ETag"]
    assert (mocks / "shop.yaml").read_text() == text  # nothing overwritten

    bad = admin(
        "PUT",
        "/api/mocks/shop.yaml/1",
        json={"yaml": "name: x\nrequest: {path: /x}\nresponse:\n  status: abc\n"},
        headers={"If-Match": saved.headers["ETag"]},
    )
    assert bad.status_code == 422
    assert bad.json()["problems"] == [
        {"line": 4, "message": "response.status: 'abc' is not of type 'integer'"}
    ]

    created = admin(
        "POST",
        "/api/mocks",
        json={
            "file": "new/orders.yaml",
            "mock": {
                "request": {"method": "GET", "host": "api.shop.test", "path": "/orders"},
                "response": {"body": {"orders": []}},
            },
        },
    )
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == "/api/mocks/new/orders.yaml/0"
    assert box.get("http://api.shop.test/orders").json() == {"orders": []}

    dup = admin(
        "POST",
        "/api/mocks",
        json={
            "file": "shop.yaml",
            "index": 1,
            "yaml": "name: first user\n"
            "request: {method: GET, host: api.shop.test, path: /users/1}\n"
            "response: {body: {id: 1, name: first}}\n",
        },
    )
    assert dup.status_code == 201 and dup.json()["id"] == "shop.yaml/1"
    assert box.get("http://api.shop.test/users/1").json() == {"id": 1, "name": "first"}

    current = admin("GET", "/api/mocks/shop.yaml/0")
    assert admin("DELETE", "/api/mocks/shop.yaml/0").status_code == 428
    gone = admin("DELETE", "/api/mocks/shop.yaml/0", headers={"If-Match": current.headers["ETag"]})
    assert gone.status_code == 200
    assert box.get("http://api.shop.test/users").status_code == 404  # strict: no mock matched
    final = (mocks / "shop.yaml").read_text()
    assert "# The list of users." not in final and "inline comment stays" not in final
    for kept in (
        "# Shop mocks: this header comment stays.",
        "# One user.",
        "# Footer comment stays.",
    ):
        assert kept in final
    assert admin("GET", "/api/mocks/shop.yaml/9").status_code == 404
    assert admin("GET", "/api/mocks/nothing.yaml/0").status_code == 404


def test_a_file_broken_elsewhere_is_left_as_it_was(mockbox: MockBoxFactory, tmp_path: Path) -> None:
    """A save into a file whose other mocks have problems would not load: the file is put
    back, the problems are reported, and the last good version keeps serving."""
    box, mocks = start(mockbox, tmp_path)
    admin = Admin(box)
    etag = admin("GET", "/api/mocks/shop.yaml/0").headers["ETag"]
    broken = SHOP.replace('path: "/users/{id}"', 'path: "/users/{id"')  # mock 1 breaks
    write_mocks(mocks, "shop.yaml", broken)  # edited by hand, not reloaded yet (interval 0)
    saved = admin(
        "PUT",
        "/api/mocks/shop.yaml/0",
        json={
            "mock": {
                "request": {"host": "api.shop.test", "path": "/users"},
                "response": {"body": []},
            }
        },
        headers={"If-Match": etag},
    )
    assert saved.status_code == 409, saved.text
    assert saved.json()["error"] == "FILE_NOT_EDITABLE"
    (problem,) = saved.json()["problems"]
    assert problem["line"] == 11 and "a parameter must be a whole segment" in problem["message"]
    assert (mocks / "shop.yaml").read_text() == broken
    # The last good version still answers.
    assert box.get("http://api.shop.test/users/3").json() == {"id": 3, "name": "foo"}


def test_paths_stay_inside_the_mocks_folder(mockbox: MockBoxFactory, tmp_path: Path) -> None:
    box, mocks = start(mockbox, tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, mocks / "link")
    admin = Admin(box)
    mock = {"request": {"path": "/x"}, "response": {"body": "x"}}
    for name in (
        "../evil.yaml",
        "/tmp/evil.yaml",
        "a/../../evil.yaml",
        "link/evil.yaml",
        ".evil.yaml",
        "evil.sh",
    ):
        r = admin("POST", "/api/mocks", json={"file": name, "mock": mock})
        assert r.status_code == 400, name
        assert r.json()["error"] == "PATH_REFUSED"
    assert (
        admin("GET", "/api/mocks/..%2F..%2Fetc%2Fpasswd.yaml/0").json()["error"] == "PATH_REFUSED"
    )
    assert list(outside.iterdir()) == [] and not (tmp_path / "evil.yaml").exists()


def test_token_and_cross_site_guard(mockbox: MockBoxFactory, tmp_path: Path) -> None:
    box, _ = start(mockbox, tmp_path, env={"MOCKBOX_ADMIN_TOKEN": "s3cret-token"})
    anonymous, wrong, right = Admin(box), Admin(box, "wrong"), Admin(box, "s3cret-token")
    for client in (anonymous, wrong):
        r = client("GET", "/api/mocks")
        assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
        assert client("POST", "/api/mocks", json={"file": "a.yaml", "yaml": "x"}).status_code == 401
    assert right("GET", "/api/mocks").status_code == 200
    page = anonymous("GET", "/")  # the page itself holds no data; its API calls need the token
    assert page.status_code == 200 and "<title>MockBox editor</title>" in page.text
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert anonymous("GET", "/assets/editor.js").status_code == 200

    body = {"file": "a.yaml", "yaml": "request: {path: /a}\nresponse: {body: a}\n"}
    evil = right("POST", "/api/mocks", json=body, headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403 and evil.json()["error"] == "CROSS_SITE_REFUSED"
    other_port = right("POST", "/api/mocks", json=body, headers={"Origin": "http://127.0.0.1:1"})
    assert other_port.status_code == 403
    rebound = right("GET", "/api/mocks", headers={"Host": "evil.example"})
    assert rebound.status_code == 403 and "DNS" not in rebound.text  # the message names Host
    form = right("POST", "/api/mocks", data="file=a.yaml")
    assert form.status_code == 415 and form.json()["error"] == "JSON_REQUIRED"
    same_origin = right("POST", "/api/mocks", json=body, headers={"Origin": box.admin})
    assert same_origin.status_code == 201


def test_traffic_and_save_as_mock(mockbox: MockBoxFactory, tmp_path: Path) -> None:
    box, _ = start(mockbox, tmp_path)
    admin = Admin(box)
    box.get("http://api.shop.test/users", headers={"Authorization": "Bearer user-secret"})
    box.get("http://api.shop.test/nothing/here")
    box.get("http://api.shop.test/users/7")
    listed = admin("GET", "/api/traffic").json()["traffic"]
    assert [(t["method"], t["url"], t["status"], t["source"]) for t in listed] == [
        ("GET", "http://api.shop.test/users/7", 200, "mock"),
        ("GET", "http://api.shop.test/nothing/here", 404, "mock"),
        ("GET", "http://api.shop.test/users", 200, "mock"),
    ]
    assert listed[0]["mock"] == "shop.yaml#get user" and listed[0]["duration_ms"] >= 0
    assert [
        t["id"] for t in admin("GET", f"/api/traffic?since={listed[1]['id']}").json()["traffic"]
    ] == [listed[0]["id"]]
    assert admin("GET", "/api/traffic?source=ai").json()["traffic"] == []
    assert admin("GET", "/api/traffic?source=bogus").status_code == 400

    first = admin("GET", f"/api/traffic/{listed[2]['id']}").json()
    headers = dict(first["request"]["headers"])
    assert headers["Authorization"] == "Bearer REDACTED" and "user-secret" not in json.dumps(first)
    assert json.loads(first["response"]["body"]) == [{"id": 1, "name": "foo", "email": "a@b.co"}]

    draft = admin("GET", f"/api/traffic/{listed[0]['id']}/draft").json()
    assert draft["file"] == "api.shop.test.yaml"
    assert draft["mock"]["request"] == {
        "method": "GET",
        "path": "/users/7",
        "host": "api.shop.test",
    }
    assert draft["mock"]["response"]["body"] == {"id": 7, "name": "foo"}
    assert "X-MockBox-Source" not in draft["mock"]["response"].get("headers", {})
    changed = draft["yaml"].replace("name: foo", "name: saved from traffic")
    saved = admin("POST", "/api/mocks", json={"file": draft["file"], "yaml": changed})
    assert saved.status_code == 201, saved.text
    assert box.get("http://api.shop.test/users/7").json() == {"id": 7, "name": "saved from traffic"}
    assert admin("GET", "/api/traffic/999999").status_code == 404


def test_ai_generate_and_improve_offline(mockbox: MockBoxFactory, tmp_path: Path) -> None:
    box, _ = start(mockbox, tmp_path)
    admin = Admin(box)
    known = admin(
        "POST",
        "/api/ai/generate",
        json={"method": "GET", "url": "http://api.shop.test/users/42", "description": "one user"},
    )
    assert known.status_code == 200, known.text
    draft = known.json()
    assert draft["provider"] == "offline" and "get user" in draft["explanation"]
    assert draft["file"] == "generated/api.shop.test.yaml"
    assert draft["mock"]["request"]["path"] == "/users/42"
    assert draft["mock"]["response"]["body"]["id"] == 42

    hinted = admin(
        "POST",
        "/api/ai/generate",
        json={
            "method": "GET",
            "host": "api.new.test",
            "path": "/books",
            "schema_hint": "id, title, price: number",
            "complexity": "simple",
        },
    )
    assert hinted.status_code == 200, hinted.text
    books = hinted.json()["mock"]["response"]["body"]
    assert len(books) == 2 and set(books[0]) == {"id", "title", "price"}
    unknown = admin(
        "POST", "/api/ai/generate", json={"method": "GET", "url": "http://api.new.test/books"}
    )
    assert unknown.status_code == 501 and "schema hint" in unknown.json()["message"]
    assert admin("POST", "/api/ai/generate", json={"url": "ftp://x/y"}).status_code == 400
    assert (
        admin(
            "POST", "/api/ai/generate", json={"url": "http://a.test/", "complexity": "huge"}
        ).status_code
        == 400
    )

    saved = admin("POST", "/api/mocks", json={"file": draft["file"], "yaml": draft["yaml"]})
    assert saved.status_code == 201
    assert box.get("http://api.shop.test/users/42").json() == draft["mock"]["response"]["body"]

    current = admin("GET", "/api/mocks/shop.yaml/0").json()
    improved = admin(
        "POST", "/api/ai/improve", json={"yaml": current["yaml"], "instruction": "add pagination"}
    )
    assert improved.status_code == 200, improved.text
    proposal = improved.json()
    assert "pagination" in proposal["explanation"] and len(proposal["yaml"]) == 1
    assert proposal["mocks"][0]["response"]["body"]["data"] == [
        {"id": 1, "name": "foo", "email": "a@b.co"}
    ]
    assert yaml.safe_load(proposal["original_yaml"]) == current["mock"]
    not_understood = admin(
        "POST",
        "/api/ai/improve",
        json={"yaml": current["yaml"], "instruction": "translate to French"},
    )
    assert not_understood.status_code == 422
    assert not_understood.json()["error"] == "AI_INSTRUCTION_NOT_UNDERSTOOD"
    broken = admin(
        "POST",
        "/api/ai/improve",
        json={"yaml": "name: a\nname: b\n", "instruction": "add pagination"},
    )
    assert broken.status_code == 422
    assert broken.json()["problems"] == [
        {"line": 2, "message": "invalid YAML: duplicate key 'name'"}
    ]


def test_ai_budget_429_and_llm_improvement(
    mockbox: MockBoxFactory, tmp_path: Path, llm_server: LLMServer
) -> None:
    mock = {
        "name": "list users",
        "request": {"method": "GET", "host": "api.shop.test", "path": "/users"},
        "response": {"body": {"data": [{"id": 1}], "page": "{{ query.page | default(1) | int }}"}},
    }
    llm_server.script = [
        {
            "answer": {
                "mocks": [{"request": {"path": "/users"}, "response": {"status": "abc"}}],
                "explanation": "bad",
            }
        },
        {"answer": {"mocks": [mock], "explanation": "Paginated."}},
    ]
    box, _ = start(
        mockbox,
        tmp_path,
        {
            "ai": {
                "provider": "openai",
                "base_url": f"{llm_server.url}/v1",
                "max_retries": 0,
                "timeout": 5,
                "budget": {"total_tokens_per_day": 300},
            }
        },
        env={"OPENAI_API_KEY": "sk-test"},
    )
    admin = Admin(box)
    current = admin("GET", "/api/mocks/shop.yaml/0").json()
    improved = admin(
        "POST", "/api/ai/improve", json={"yaml": current["yaml"], "instruction": "add pagination"}
    )
    assert improved.status_code == 200, improved.text
    assert improved.json()["mocks"] == [mock] and improved.json()["explanation"] == "Paginated."
    assert improved.json()["tokens_in"] == 240  # two calls: the first answer was repaired
    first, second = llm_server.calls
    assert first["body"]["response_format"]["json_schema"]["name"] == "mock_change"
    prompt = json.loads(first["body"]["messages"][1]["content"])
    assert prompt["instruction"] == "add pagination" and prompt["mock"]["name"] == "list users"
    assert "response.status" in second["body"]["messages"][1]["content"]  # the repair names it

    spent = admin(
        "POST", "/api/ai/generate", json={"method": "GET", "url": "http://api.shop.test/users/9"}
    )
    assert spent.status_code == 429
    payload = spent.json()
    assert payload["error"] == "AI_BUDGET_EXCEEDED" and "midnight" in payload["message"]
    assert 0 < payload["retry_after"] <= 86400
    assert spent.headers["Retry-After"] == str(payload["retry_after"])
    again = admin("POST", "/api/ai/improve", json={"yaml": current["yaml"], "instruction": "x"})
    assert again.status_code == 429 and len(llm_server.calls) == 2
    usage = admin("GET", "/api/ai/usage").json()
    assert usage["total"]["tokens_in"] == 240


def test_ai_buttons_count_in_the_ai_rate_limit_tier(
    mockbox: MockBoxFactory, tmp_path: Path
) -> None:
    box, _ = start(mockbox, tmp_path, env={"MOCKBOX_RATE_LIMIT_AI": "2/minute"})
    admin = Admin(box)
    ask = {"method": "GET", "url": "http://api.shop.test/users/42"}
    assert [admin("POST", "/api/ai/generate", json=ask).status_code for _ in range(2)] == [200, 200]
    limited = admin("POST", "/api/ai/generate", json=ask)
    assert limited.status_code == 429
    data = limited.json()
    assert data["error"] == "AI_RATE_LIMIT_EXCEEDED" and 0 < data["retry_after"] <= 60
    assert limited.headers["Retry-After"] == str(data["retry_after"])
    assert 'mockbox_rate_limited_total{tier="ai"} 1.0' in box.metrics()
    # Mocks through the proxy are in the public tier: untouched.
    assert box.get("http://api.shop.test/users").status_code == 200
