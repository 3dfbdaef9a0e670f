"""The admin API against the OWASP API Security Top 10 (see SECURITY.md): every /api route
behind the token, guessing throttled, every route behind the Host check, errors as JSON,
bounded bodies, no details for strangers. That the proxy cannot reach the admin server is
tests/test_admin_self_guard.py."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
import requests

from mockbox import stack
from mockbox.admin import AdminServer

from .conftest import REPO, MockBox, MockBoxFactory, clean_env, free_port
from .test_config_cli import run_mockbox

TOKEN = "a-long-enough-admin-token-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def all_paths() -> list[str]:
    """Every route the running app registers, made concrete (regex groups filled in)."""
    admin = next(a for a in stack.build() if isinstance(a, AdminServer))
    patterns = ["/healthz", "/metrics", *(pattern for pattern, *_ in admin.routes)]
    return [re.sub(r"\([^)]*\)", "1", p).replace(r"\d+", "1") for p in patterns]


def api_paths() -> list[str]:
    return [path for path in all_paths() if path.startswith("/api")]


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
    # The right token still passes from the throttled address: a guesser cannot lock out the
    # owner (the token is compared in constant time either way).
    assert requests.get(guarded.admin + "/api/mocks", headers=AUTH, timeout=5).status_code == 200
    # Guesses at /healthz are throttled too (it answers more with the right token).
    health = requests.get(guarded.admin + "/healthz", headers=wrong, timeout=5)
    assert (health.status_code, health.json()["error"]) == (429, "TOO_MANY_FAILED_LOGINS")
    full = requests.get(guarded.admin + "/healthz", headers=AUTH, timeout=5)
    assert full.status_code == 200 and "folder" in full.json()["mocks"]
    # and without a token, /healthz answers as it does to any probe
    assert requests.get(guarded.admin + "/healthz", timeout=5).status_code == 200


def test_healthz_guesses_count(guarded: MockBox) -> None:
    wrong = {"Authorization": "Bearer guess"}
    codes = [
        requests.get(guarded.admin + "/healthz", headers=wrong, timeout=5).status_code
        for _ in range(11)
    ]
    assert codes == [401] * 10 + [429]
    assert requests.get(guarded.admin + "/api/mocks", headers=wrong, timeout=5).status_code == 429


@pytest.mark.parametrize("token", [None, TOKEN])
def test_every_route_checks_the_host_header(mockbox: MockBoxFactory, token: str | None) -> None:
    """DNS rebinding: a page at evil.example (resolving to 127.0.0.1) reads nothing, not even
    /healthz (the folder and problems) or /metrics, from an admin server on loopback."""
    env = clean_env(MOCKBOX_ADMIN_TOKEN=token) if token else clean_env()
    box = mockbox(REPO / "mocks", env=env)
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    paths = [*all_paths(), "/nowhere"]
    assert {"/healthz", "/metrics", "/", "/assets/1", "/api/mocks"} <= set(paths)
    rebound = {"Host": f"evil.example:{box.admin_port}", **auth}
    for path in paths:
        for method in ("GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE"):
            r = requests.request(method, box.admin + path, headers=rebound, timeout=5)
            assert r.status_code == 403, (method, path, r.status_code)
            if method != "HEAD":
                assert r.json()["error"] == "CROSS_SITE_REFUSED"
                assert "folder" not in r.text and "mockbox_" not in r.text  # nothing leaks
    for host in ("127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]"):
        named = {"Host": f"{host}:{box.admin_port}", **auth}
        for path in ("/healthz", "/metrics", "/"):
            r = requests.get(box.admin + path, headers=named, timeout=5)
            assert r.status_code == 200, (host, path)


def test_probes_by_pod_address_work_beyond_loopback(mockbox: MockBoxFactory) -> None:
    """Listening beyond loopback (the token guards it), any Host may lead to the admin server:
    an orchestrator probes the pod's address, an ingress sends its own name."""
    box = mockbox(
        REPO / "mocks", "--admin-host", "0.0.0.0", env=clean_env(MOCKBOX_ADMIN_TOKEN=TOKEN)
    )
    for host in ("10.1.2.3", "mockbox.internal.example", "127.0.0.1"):
        headers = {"Host": f"{host}:{box.admin_port}"}
        assert requests.get(box.admin + "/healthz", headers=headers, timeout=5).status_code == 200
        assert requests.get(box.admin + "/metrics", headers=headers, timeout=5).status_code == 200
        r = requests.get(box.admin + "/api/mocks", headers={**headers, **AUTH}, timeout=5)
        assert r.status_code == 200


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
