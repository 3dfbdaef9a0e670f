"""AI synthesis through a real proxy, with the real openai/anthropic SDKs talking to local
servers that speak their wire protocols, and the offline provider."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import requests
import yaml

from .conftest import (
    BIN,
    CANARY_MOCK,
    Canary,
    LLMServer,
    MockBox,
    MockBoxFactory,
    clean_env,
    gzipped_huge_answer,
    wait_until,
    write_mocks,
)

SHOP = """
mocks:
  - name: get user
    request: {method: GET, host: api.shop.test, path: "/users/3"}
    response:
      body: {id: 3, email: ada@example.com, name: Ada Lovelace, created_at: "2024-01-02T10:00:00Z",
             role: admin, active: true}
  - name: list orders
    request: {method: GET, host: api.shop.test, path: /orders}
    response:
      body: {data: [{id: 1, total: 12.5, status: paid, customer_email: bob@example.com}], page: 1}
  - name: other host
    request: {method: GET, host: other.test, path: /users/3}
    response: {body: {something: else}}
"""

GOOD = {
    "status": 200,
    "headers": {"Content-Type": "application/json"},
    "body": {"id": 7, "email": "grace@example.com", "name": "Grace Hopper"},
    "explanation": "A user like user 3.",
}


def start(
    mockbox: MockBoxFactory,
    tmp_path: Path,
    ai: dict[str, Any],
    env: dict[str, str] | None = None,
) -> MockBox:
    mocks = tmp_path / "mocks"
    write_mocks(mocks, "shop.yaml", SHOP)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"unmatched": "ai", "ai": ai}))
    return mockbox(mocks, "--config", str(config), env=clean_env(**(env or {})))


def openai_box(mockbox: MockBoxFactory, tmp_path: Path, llm: LLMServer, **ai: Any) -> MockBox:
    settings = {
        "provider": "openai",
        "base_url": f"{llm.url}/v1",
        "model": "gpt-4o-mini",
        "max_retries": 0,
        "timeout": 5,
        **ai,
    }
    return start(mockbox, tmp_path, settings, {"OPENAI_API_KEY": "sk-test-secret"})


def test_openai_answer_grounded_in_the_hosts_mocks(
    mockbox: MockBoxFactory, tmp_path: Path, llm_server: LLMServer
) -> None:
    llm_server.script = [{"answer": GOOD}]
    box = openai_box(mockbox, tmp_path, llm_server)
    r = box.get("http://api.shop.test/users/7", headers={"Authorization": "Bearer user-token"})
    assert r.status_code == 200
    assert r.json() == GOOD["body"]
    assert r.headers["X-MockBox-Source"] == "ai"
    assert r.headers["X-MockBox-AI-Model"] == "gpt-4o-mini"
    assert r.headers["X-MockBox-AI-Explanation"] == "A user like user 3."
    (call,) = llm_server.calls
    assert call["path"] == "/v1/chat/completions"
    assert call["headers"]["authorization"] == "Bearer sk-test-secret"
    sent = call["body"]
    assert sent["model"] == "gpt-4o-mini"
    assert sent["response_format"]["type"] == "json_schema"
    prompt = json.loads(sent["messages"][1]["content"])
    assert prompt["request"]["method"] == "GET"
    assert prompt["request"]["url"] == "http://api.shop.test/users/7"
    names = [e["name"] for e in prompt["examples_from_the_same_api"]]
    assert names[0] == "get user"  # the nearest sibling route first
    assert "other host" not in names  # another API's shapes are not examples
    assert prompt["request"]["headers"]["authorization"] == "Bearer REDACTED"
    assert "user-token" not in json.dumps(sent)


def test_anthropic_answer_through_tool_use(
    mockbox: MockBoxFactory, tmp_path: Path, llm_server: LLMServer
) -> None:
    llm_server.script = [{"answer": {**GOOD, "status": 201}}]
    box = start(
        mockbox,
        tmp_path,
        {"provider": "anthropic", "base_url": llm_server.url, "max_retries": 0, "timeout": 5},
        {"ANTHROPIC_API_KEY": "ak-test"},
    )
    r = box.request("POST", "http://api.shop.test/users", json={"name": "Grace"})
    assert (r.status_code, r.json()) == (201, GOOD["body"])
    (call,) = llm_server.calls
    assert call["path"] == "/v1/messages"
    # The SDK sends the key as x-api-key or, in recent versions, as a bearer token.
    sent_key = call["headers"].get("x-api-key") or call["headers"].get("authorization", "")
    assert sent_key.removeprefix("Bearer ") == "ak-test"
    assert call["body"]["tool_choice"] == {"type": "tool", "name": "http_response"}
    assert call["body"]["tools"][0]["input_schema"]["required"] == [
        "status",
        "headers",
        "body",
        "explanation",
    ]
    assert call["body"]["model"] == "claude-haiku-4-5"


def test_invalid_answer_is_repaired_once_then_refused(
    mockbox: MockBoxFactory, tmp_path: Path, llm_server: LLMServer
) -> None:
    bad = {**GOOD, "status": 42, "headers": {"Transfer-Encoding": "chunked", "X-Ok": "a\nb"}}
    llm_server.script = [{"answer": bad}, {"answer": GOOD}]
    box = openai_box(mockbox, tmp_path, llm_server)
    repaired = box.get("http://api.shop.test/users/8")
    assert repaired.status_code == 200 and repaired.json() == GOOD["body"]
    assert len(llm_server.calls) == 2
    second = llm_server.calls[1]["body"]["messages"][1]["content"]
    assert "rejected" in second and "status must be an integer from 200 to 599" in second
    assert "'Transfer-Encoding' is managed by the proxy" in second
    assert "must not contain line breaks" in second

    llm_server.calls.clear()
    llm_server.script = [{"raw": "Sure! Here is your JSON: {oops"}]
    refused = box.get("http://api.shop.test/users/9")
    assert refused.status_code == 502
    data = refused.json()
    assert data["error"] == "AI_GENERATION_FAILED"
    assert any("JSON object" in e for e in data["errors"])
    assert len(llm_server.calls) == 2
    assert (
        'mockbox_ai_requests_total{model="gpt-4o-mini",outcome="repaired",provider="openai"} 1.0'
        in box.metrics()
    )


def test_slow_provider_gives_504_and_the_proxy_keeps_serving(
    mockbox: MockBoxFactory, tmp_path: Path, llm_server: LLMServer
) -> None:
    llm_server.script = [{"delay": 3, "answer": GOOD}]
    box = openai_box(mockbox, tmp_path, llm_server, timeout=1)
    results: dict[str, Any] = {}

    def slow() -> None:
        results["slow"] = box.get("http://api.shop.test/users/10", timeout=20)

    t = threading.Thread(target=slow)
    t.start()
    fast = box.get("http://api.shop.test/orders")  # a mock, answered while the LLM stalls
    assert fast.status_code == 200 and fast.headers["X-MockBox-Source"] == "mock"
    t.join(20)
    r = results["slow"]
    assert r.status_code == 504 and r.json()["error"] == "AI_TIMEOUT"


def test_failing_provider_trips_the_breaker(
    mockbox: MockBoxFactory, tmp_path: Path, llm_server: LLMServer
) -> None:
    llm_server.script = [{"status": 500}]
    box = openai_box(mockbox, tmp_path, llm_server, breaker={"failures": 2, "cooldown": 60})
    for i in range(2):
        r = box.get(f"http://api.shop.test/users/{20 + i}")
        assert r.status_code == 502 and r.json()["error"] == "AI_PROVIDER_ERROR"
        assert "HTTP 500" in r.json()["message"]
    calls = len(llm_server.calls)
    r = box.get("http://api.shop.test/users/30")
    assert r.status_code == 503
    assert r.json()["error"] == "AI_PROVIDER_UNAVAILABLE"
    assert 0 < int(r.headers["Retry-After"]) <= 60
    assert len(llm_server.calls) == calls  # the breaker did not call the provider
    usage = requests.get(f"{box.admin}/api/ai/usage", timeout=5).json()
    assert usage["breaker"] == "open"


def test_concurrent_identical_requests_make_one_call(
    mockbox: MockBoxFactory, tmp_path: Path, llm_server: LLMServer
) -> None:
    llm_server.script = [{"delay": 1.0, "answer": GOOD}]
    box = openai_box(mockbox, tmp_path, llm_server)
    answers: list[requests.Response] = []
    lock = threading.Lock()

    def fetch() -> None:
        r = box.get("http://api.shop.test/users/42", timeout=30)
        with lock:
            answers.append(r)

    threads = [threading.Thread(target=fetch) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(answers) == 50
    assert {r.status_code for r in answers} == {200}
    assert len(llm_server.calls) == 1


def test_budget_and_usage_accounting(
    mockbox: MockBoxFactory, tmp_path: Path, llm_server: LLMServer
) -> None:
    llm_server.script = [{"answer": GOOD}]
    llm_server.tokens = (1000, 500)
    box = openai_box(mockbox, tmp_path, llm_server, budget={"total_tokens_per_day": 2000})
    assert box.get("http://api.shop.test/users/50").status_code == 200
    assert box.get("http://api.shop.test/users/51").status_code == 200  # 1500 spent, under 2000
    spent = box.get("http://api.shop.test/users/52")
    assert spent.status_code == 429
    assert spent.json()["error"] == "AI_BUDGET_EXCEEDED"
    assert int(spent.headers["Retry-After"]) > 0
    assert len(llm_server.calls) == 2
    usage = requests.get(f"{box.admin}/api/ai/usage", timeout=5).json()
    (row,) = usage["by_model"]
    assert (row["provider"], row["model"], row["requests"]) == ("openai", "gpt-4o-mini", 2)
    assert (row["tokens_in"], row["tokens_out"]) == (2000, 1000)
    assert row["cost_usd"] == round((2000 * 0.15 + 1000 * 0.60) / 1e6, 6)
    text = box.metrics()
    assert (
        'mockbox_ai_tokens_total{direction="in",model="gpt-4o-mini",provider="openai"} 2000.0'
        in text
    )


def test_persisted_answer_becomes_a_mock(
    mockbox: MockBoxFactory, tmp_path: Path, llm_server: LLMServer
) -> None:
    body = {**GOOD["body"], "note": "{{ not a template }}"}
    llm_server.script = [{"answer": {**GOOD, "body": body}}]
    box = openai_box(mockbox, tmp_path, llm_server, persist_header=True)
    r = box.get("http://api.shop.test/users/77?x=1", headers={"X-MockBox-Persist": "true"})
    assert r.status_code == 200 and r.json() == body
    generated = tmp_path / "mocks" / "generated" / "api.shop.test.yaml"
    assert generated.exists()
    saved = yaml.safe_load(generated.read_text())["mocks"][0]
    assert saved["request"] == {
        "method": "GET",
        "host": "api.shop.test",
        "path": "/users/77",
        "query": {"x": "1"},
    }
    wait_until(lambda: box.health()["mocks"]["loaded"] == 4, 10, "the kept answer loaded")
    again = box.get("http://api.shop.test/users/77?x=1")
    assert again.headers["X-MockBox-Source"] == "mock"
    assert again.json() == body  # served verbatim: "{{ ... }}" in a model's text stays text
    assert len(llm_server.calls) == 1


def test_the_persist_header_is_ignored_unless_configured(
    mockbox: MockBoxFactory, tmp_path: Path
) -> None:
    """Any client of the proxy can send `X-MockBox-Persist`: by default it writes nothing."""
    box = start(mockbox, tmp_path, {"provider": "offline"})
    for i in range(3):
        r = box.get(f"http://api.shop.test/users/{90 + i}", headers={"X-MockBox-Persist": "true"})
        assert r.status_code == 200 and r.headers["X-MockBox-Source"] == "ai"
    wait_until(lambda: "ignoring x-mockbox-persist" in box.log(), 10, "the log line")
    assert box.log().count("ignoring x-mockbox-persist") == 1  # said once, not per request
    assert not (tmp_path / "mocks" / "generated").exists()
    assert box.health()["mocks"]["loaded"] == 3


def test_offline_provider_answers_siblings_with_the_right_shape(
    mockbox: MockBoxFactory, tmp_path: Path
) -> None:
    box = start(mockbox, tmp_path, {"provider": "offline"})
    user = box.get("http://api.shop.test/users/7")
    assert user.status_code == 200 and user.headers["X-MockBox-Source"] == "ai"
    data = user.json()
    assert set(data) == {"id", "email", "name", "created_at", "role", "active"}
    assert data["id"] == 7
    assert (
        re.fullmatch(r"[^@\s]+@[^@\s]+\.\w+", data["email"]) and data["email"] != "ada@example.com"
    )
    assert data["role"] == "admin"  # values that name a kind are kept
    assert isinstance(data["active"], bool)
    assert box.get("http://api.shop.test/users/7").json() == data  # deterministic per request
    assert box.get("http://api.shop.test/users/8").json()["email"] != data["email"]

    order = box.get("http://api.shop.test/orders/5").json()  # an item of the list route
    assert set(order) == {"id", "total", "status", "customer_email"} and order["id"] == 5
    assert isinstance(order["total"], float) and order["status"] == "paid"

    users = box.get("http://api.shop.test/users").json()  # the list of the item route
    assert isinstance(users, list) and len(users) == 3
    assert all(set(u) == set(data) for u in users)

    unknown = box.get("http://api.unknown.test/widgets/1")
    assert unknown.status_code == 501
    assert unknown.json()["error"] == "AI_NO_KNOWLEDGE"
    assert "api.unknown.test" in unknown.json()["message"]


def test_stateful_post_get_delete(mockbox: MockBoxFactory, tmp_path: Path) -> None:
    box = start(mockbox, tmp_path, {"provider": "offline", "stateful": True})
    session = {"X-MockBox-Session": "s1"}
    created = box.request(
        "POST", "http://api.shop.test/users", json={"name": "Grace", "role": "dev"}, headers=session
    )
    assert created.status_code == 201
    user = created.json()
    assert user["name"] == "Grace" and user["role"] == "dev" and user["id"]
    url = f"http://api.shop.test/users/{user['id']}"
    fetched = box.get(url, headers=session)
    assert fetched.status_code == 200 and fetched.json() == user
    other = box.get(url, headers={"X-MockBox-Session": "s2"}).json()
    assert other != user  # another session does not see it
    patched = box.request("PATCH", url, json={"role": "lead"}, headers=session)
    assert patched.json() == {**user, "role": "lead"}
    assert box.request("DELETE", url, headers=session).status_code == 204
    gone = box.get(url, headers=session).json()
    assert gone != {**user, "role": "lead"}  # synthesized afresh, not the deleted resource


def test_bad_provider_configuration_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"ai": {"provider": "openai"}}))
    out = subprocess.run(
        [str(BIN / "mockbox"), "run", "--config", str(config), "--port", "0", "--admin-port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert out.returncode == 2
    assert "OPENAI_API_KEY is not set" in out.stderr


def test_default_is_ai_with_the_offline_provider(mockbox: MockBoxFactory) -> None:
    """`./scripts/run` answers an unmocked route of the example API from its siblings."""
    from .conftest import REPO

    box = mockbox(REPO / "mocks")
    assert box.health()["unmatched"] == "ai"
    r = box.get("http://api.bookshop.test/v1/authors/12")
    assert r.status_code == 200 and r.headers["X-MockBox-Source"] == "ai"
    assert r.headers["X-MockBox-AI-Provider"] == "offline"
    assert r.json()["id"] == 12


def test_generate_command(tmp_path: Path, llm_server: LLMServer) -> None:
    mocks = tmp_path / "mocks"
    write_mocks(mocks, "shop.yaml", SHOP)
    out = subprocess.run(
        [
            str(BIN / "mockbox"),
            "generate",
            "GET",
            "http://api.shop.test/users/12",
            "--mocks",
            str(mocks),
            "--save",
            str(mocks / "kept.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert out.returncode == 0, out.stderr
    printed = yaml.safe_load(out.stdout)["mocks"][0]
    assert printed["request"] == {"method": "GET", "path": "/users/12", "host": "api.shop.test"}
    assert printed["response"]["body"]["id"] == 12
    assert "Offline provider" in out.stderr
    assert yaml.safe_load((mocks / "kept.yaml").read_text())["mocks"] == [printed]

    llm_server.script = [{"answer": GOOD}]
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "ai": {
                    "provider": "openai-compatible",
                    "base_url": f"{llm_server.url}/v1",
                    "max_retries": 0,
                }
            }
        )
    )
    out = subprocess.run(
        [
            str(BIN / "mockbox"),
            "generate",
            "POST",
            "http://api.shop.test/users",
            "--config",
            str(config),
            "--mocks",
            str(mocks),
            "--description",
            "create a user",
            "--complexity",
            "simple",
            "--schema-hint",
            "id, email",
            "--body",
            '{"email": "x@y.z"}',
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(out.stdout)["mocks"][0]["response"]["body"] == GOOD["body"]
    prompt = json.loads(llm_server.calls[0]["body"]["messages"][1]["content"])
    assert prompt["what_this_endpoint_does"] == "create a user"
    assert prompt["schema_hint"] == "id, email"
    assert prompt["request"]["body"] == {"email": "x@y.z"}
    assert "few fields" in prompt["detail"]
    assert llm_server.calls[0]["body"]["model"] == "llama3.1"


PETS = """
mocks:
  - name: get pet (strict clients only)
    request:
      method: GET
      host: pets.test
      path: "/pets/{id}"
      headers: {X-Client: strict}
    response: {body: {id: 1, name: Rex, tag: dog}}
    openapi:
      operation_id: getPet
      method: GET
      path: "/pets/{id}"
      response_schema:
        type: object
        required: [id, name, tag]
        properties:
          id: {type: integer}
          name: {type: string}
          tag: {type: string, enum: [dog, cat]}
        additionalProperties: false
"""


def test_imported_openapi_schema_grounds_and_checks_answers(
    mockbox: MockBoxFactory, tmp_path: Path, llm_server: LLMServer
) -> None:
    mocks = tmp_path / "mocks"
    write_mocks(mocks, "pets.yaml", PETS)
    offline = mockbox(mocks)
    pet = offline.get("http://pets.test/pets/9")  # no X-Client header: no mock matches
    assert pet.status_code == 200 and pet.headers["X-MockBox-Source"] == "ai"
    body = pet.json()
    assert set(body) == {"id", "name", "tag"} and body["tag"] in ("dog", "cat")
    assert isinstance(body["id"], int)

    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {"ai": {"provider": "openai", "base_url": f"{llm_server.url}/v1", "max_retries": 0}}
        )
    )
    bad = {**GOOD, "body": {"id": "nine", "name": "Rex"}}
    fixed = {**GOOD, "body": {"id": 9, "name": "Rex", "tag": "dog"}}
    llm_server.script = [{"answer": bad}, {"answer": fixed}]
    box = mockbox(mocks, "--config", str(config), env=clean_env(OPENAI_API_KEY="k"))
    r = box.get("http://pets.test/pets/9")
    assert r.status_code == 200 and r.json() == fixed["body"]
    prompt = json.loads(llm_server.calls[0]["body"]["messages"][1]["content"])
    assert prompt["response_body_json_schema"]["required"] == ["id", "name", "tag"]
    repair = llm_server.calls[1]["body"]["messages"][1]["content"]
    assert "does not match the API's schema" in repair and "'tag' is a required property" in repair


def _memory_kib(box: MockBox, field: str) -> int:
    """VmRSS (now) or VmHWM (the peak since it started) of the MockBox process, in KiB."""
    status = Path(f"/proc/{box.proc.pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.M).group(1))  # type: ignore[union-attr]


def test_a_huge_provider_answer_is_cut_off_without_stalling_anyone(
    mockbox: MockBoxFactory, tmp_path: Path, llm_server: LLMServer
) -> None:
    """54 MB from the provider once took 159 s and 5.4 GB. Now at most ai.max_answer_bytes
    (1 MiB) is read, counted as it arrives and as it decompresses, with or without a
    Content-Length; the client gets the usual 502 and no other client waits meanwhile."""
    size = 54_000_000
    variants = [
        {"huge": size},
        {"huge": size, "chunked": True},
        {"huge": size, "gzip": True},  # 50 KB on the wire, 54 MB decoded
        {"huge": size, "gzip": True, "chunked": True},
    ]
    llm_server.script = variants * 100
    mocks = tmp_path / "mocks"
    write_mocks(mocks, "shop.yaml", SHOP + CANARY_MOCK)
    config = tmp_path / "config.yaml"
    ai = {"provider": "openai", "base_url": f"{llm_server.url}/v1", "max_retries": 1}
    ai.update(timeout=60, breaker={"failures": 1000, "cooldown": 30})
    config.write_text(yaml.safe_dump({"unmatched": "ai", "ai": ai}))
    box = mockbox(mocks, "--config", str(config), env=clean_env(OPENAI_API_KEY="sk-test"))
    gzipped_huge_answer(size)
    before = _memory_kib(box, "VmRSS")
    took = []
    with Canary(box) as canary:
        begun = time.monotonic()
        while len(took) < 8 or (time.monotonic() - begun < 1.5 and len(took) < 300):
            variant = variants[len(took) % len(variants)]
            started = time.monotonic()
            r = box.get(f"http://api.shop.test/users/{1000 + len(took)}", timeout=120)
            took.append(time.monotonic() - started)
            assert r.status_code == 502, (variant, r.text)
            error = r.json()
            assert error["error"] == "AI_PROVIDER_ERROR", variant
            assert "larger than ai.max_answer_bytes (1048576 bytes)" in error["message"], variant
    canary.assert_never_waited()
    assert len(llm_server.calls) == len(took)  # refused, not retried
    assert max(took) < 10, took
    grown = _memory_kib(box, "VmHWM") - before
    assert grown < 100 * 1024, f"the peak grew by {grown} KiB"  # not the 54 MB, let alone GBs
    print(
        f"{len(took)} refusals, the slowest {max(took):.2f} s; worst canary wait "
        f"{canary.worst * 1000:.0f} ms; peak +{grown} KiB"
    )


def test_anthropic_answers_are_capped_too(
    mockbox: MockBoxFactory, tmp_path: Path, llm_server: LLMServer
) -> None:
    llm_server.script = [{"huge": 5_000_000, "gzip": True, "chunked": True}, {"answer": GOOD}]
    box = start(
        mockbox,
        tmp_path,
        {"provider": "anthropic", "base_url": llm_server.url, "max_retries": 1, "timeout": 30},
        {"ANTHROPIC_API_KEY": "ak-test"},
    )
    r = box.get("http://api.shop.test/users/70", timeout=60)
    assert r.status_code == 502 and r.json()["error"] == "AI_PROVIDER_ERROR"
    assert "max_answer_bytes" in r.json()["message"]
    ok = box.get("http://api.shop.test/users/71")  # the next, ordinary answer is read as usual
    assert ok.status_code == 200 and ok.json() == GOOD["body"]
