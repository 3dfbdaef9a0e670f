"""The admin API against the OWASP API Security Top 10 (see SECURITY.md): every /api route
behind the token, guessing throttled, errors as JSON, bounded bodies, no details for strangers,
and no way to reach the admin server through the proxy."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
import requests

from mockbox import stack
from mockbox.admin import AdminServer

from .conftest import REPO, MockBox, MockBoxFactory, clean_env, free_port, write_mocks
from .test_config_cli import run_mockbox

TOKEN = "a-long-enough-admin-token-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def api_paths() -> list[str]:
    """Every /api route the running app registers, made concrete (regex groups filled in)."""
    admin = next(a for a in stack.build() if isinstance(a, AdminServer))
    paths = []
    for pattern, *_ in admin.routes:
        if pattern.startswith("/api"):
            paths.append(re.sub(r"\([^)]*\)", "1", pattern).replace(r"\d+", "1"))
    return paths


@pytest.fixture
def guarded(mockbox: MockBoxFactory) -> MockBox:
    return mockbox(REPO / "mocks", env=clean_env(MOCKBOX_ADMIN_TOKEN=TOKEN))


def test_every_api_route_requires_the_token(guarded: MockBox) -> None:
    paths = api_paths()
    assert {"/api/mocks", "/api/traffic", "/api/ai/generate", "/api/cache/purge"} <= set(paths)
    for path in paths:
        for method in ("GET", "POST", "PUT", "DELETE"):
            r = requests.request(method, guarded.admin + path, json={}, timeout=5)
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.json()["error"] == "UNAUTHORIZED"
    # and with it, the same routes answer (whatever the status, never 401)
    assert requests.get(guarded.admin + "/api/mocks", headers=AUTH, timeout=5).status_code == 200


def test_guessing_the_token_is_throttled(guarded: MockBox) -> None:
    wrong = {"Authorization": "Bearer guess"}
    statuses = [
        requests.get(guarded.admin + "/api/mocks", headers=wrong, timeout=5).status_code
        for _ in range(10)
    ]
    assert statuses == [401] * 10
    refused = requests.get(guarded.admin + "/api/mocks", headers=wrong, timeout=5)
    assert refused.status_code == 429
    assert refused.json()["error"] == "TOO_MANY_FAILED_LOGINS"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # the address stays refused for the window, even with the right token
    assert requests.get(guarded.admin + "/api/mocks", headers=AUTH, timeout=5).status_code == 429


def test_errors_are_json_never_html(guarded: MockBox) -> None:
    cases = [
        ("GET", "/api/no-such-thing", 404, "NOT_FOUND"),
        ("GET", "/nowhere", 404, "NOT_FOUND"),
        ("PATCH", "/api/mocks", 405, "METHOD_NOT_ALLOWED"),
        ("POST", "/healthz", 405, "METHOD_NOT_ALLOWED"),
        ("DELETE", "/api/cache", 405, "METHOD_NOT_ALLOWED"),
    ]
    for method, path, status, code in cases:
        r = requests.request(method, guarded.admin + path, headers=AUTH, timeout=5)
        assert (r.status_code, r.headers["Content-Type"]) == (status, "application/json"), path
        assert r.json()["error"] == code and "<html" not in r.text
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Frame-Options"] == "DENY"


def test_request_bodies_are_bounded(guarded: MockBox) -> None:
    """A body announced larger than the admin server takes is refused before it is read."""
    with socket.create_connection(("127.0.0.1", guarded.admin_port), timeout=10) as s:
        s.sendall(
            b"POST /api/mocks/validate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 500000000\r\n\r\n{"
        )
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    assert requests.get(guarded.admin + "/healthz", timeout=5).status_code == 200


def test_healthz_tells_strangers_less(guarded: MockBox, tmp_path: Path) -> None:
    public = requests.get(guarded.admin + "/healthz", timeout=5).json()
    assert public["status"] == "ok" and public["mocks"]["loaded"] == 16
    assert "folder" not in public["mocks"] and "problems" not in public["mocks"]
    assert "proxy" not in public and public["mocks"]["problem_count"] == 0
    full = requests.get(guarded.admin + "/healthz", headers=AUTH, timeout=5).json()
    assert full["mocks"]["folder"] == str(REPO / "mocks") and full["proxy"]["mode"] == ["regular"]


def test_short_token_refused_beyond_loopback() -> None:
    out = run_mockbox(
        *("run", "--port", str(free_port()), "--admin-port", str(free_port())),
        *("--admin-host", "0.0.0.0", "--mocks", str(REPO / "mocks")),
        env=clean_env(MOCKBOX_ADMIN_TOKEN="s3cret"),
    )
    assert out.returncode == 2 and "too short" in out.stderr and "16 characters" in out.stderr


def test_the_proxy_does_not_forward_to_the_admin_server(
    mockbox: MockBoxFactory, tmp_path: Path
) -> None:
    mocks = tmp_path / "mocks"
    write_mocks(mocks, "m.yaml", "mocks:\n  - request: {path: /ok}\n    response: {body: ok}\n")
    box = mockbox(mocks, "--unmatched", "upstream")
    for host in ("127.0.0.1", "localhost", "0.0.0.0"):
        r = box.get(f"http://{host}:{box.admin_port}/api/mocks")
        assert r.status_code == 502, host
        assert "own admin server" in r.text
    assert box.get("http://any.test/ok").text == "ok"
    direct = requests.get(f"{box.admin}/api/mocks", timeout=5)  # while direct use still works
    assert direct.status_code == 200 and direct.json()["total"] == 1


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on `port`, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, _, hexport = local.partition(":")
            if state == "0A" and int(hexport, 16) == port:  # 0A: LISTEN
                found.add(addr)
    return found


def test_the_proxy_listens_on_loopback_by_default(mockbox: MockBoxFactory) -> None:
    box = mockbox(REPO / "mocks")
    assert listening_addresses(box.port) == {socket.inet_aton("127.0.0.1")[::-1].hex().upper()}
    assert "anyone who reaches this port" not in box.log()
    # mitmproxy's block addon is loaded (its option exists): public clients are refused
    wide = mockbox(REPO / "mocks", "--host", "0.0.0.0", "--set", "block_global=true")
    assert "anyone who reaches this port can use it" in wide.log()
