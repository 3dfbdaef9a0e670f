"""The proxy never reaches MockBox itself, however the target is spelled: not its admin API (a
proxy client could change what the proxy answers) and not its own proxy port (a loop). Driven
through real `mockbox run --unmatched upstream` and `mockbox record` processes, with the
request line written exactly as an attacker would (http.client sends it unchanged)."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from mitmproxy.connection import Server
from mitmproxy.proxy.server_hooks import ServerConnectionHookData
from mitmproxy.test import taddons, tflow

from mockbox import stack
from mockbox.admin import AdminServer
from mockbox.selfguard import SelfGuard, is_own_address

from .conftest import MockBox, MockBoxFactory, Upstream, clean_env, write_mocks

MOCKS = "mocks:\n  - request: {path: /ok}\n    response: {body: ok}\n"
TOKEN = "a-long-enough-admin-token-0123"
NEW_MOCK = {"file": "injected.yaml", "yaml": "request: {path: /pwned}\nresponse: {body: pwned}\n"}


def interface_address(family: socket.AddressFamily, probe: str) -> str | None:
    """This machine's address on the interface that routes to `probe` (nothing is sent)."""
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((probe, 9))
            return str(s.getsockname()[0])
    except OSError:
        return None


IPV4 = interface_address(socket.AF_INET, "203.0.113.1")
IPV6 = interface_address(socket.AF_INET6, "2001:db8::1")

# Every way of writing "this machine" that the system resolver turns into one of its addresses.
SPELLINGS = [
    "127.0.0.1",
    "127.0.0.2",  # all of 127/8 is loopback
    "localhost",
    "LocalHost",
    socket.gethostname(),  # a name that resolves to a local address
    "[::1]",
    "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6 (is_loopback differs between Python 3.12 and 3.13)
    "[::ffff:7f00:1]",
    "2130706433",  # decimal
    "0x7f000001",  # hex
    "017700000001",  # octal
    "0177.0.0.1",
    "0x7f.1",
    "127.1",  # short form
    "0",
    "0.0.0.0",
    "[::]",
    *([IPV4] if IPV4 else []),  # an interface's own address
    *([f"[{IPV6}]"] if IPV6 else []),
]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def through_proxy(
    box: MockBox, method: str, url: str, body: dict[str, Any] | None = None, **headers: str
) -> Answer:
    """Send `method url` to the proxy with the URL exactly as given, as curl -x would."""
    conn = http.client.HTTPConnection("127.0.0.1", box.port, timeout=15)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        if payload is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, url, payload, headers)
        r = conn.getresponse()
        return Answer(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def boxes(tmp_path_factory: pytest.TempPathFactory, confdir: Path) -> Iterator[dict[str, MockBox]]:
    """MockBox forwarding what no mock answers (spy mode), and MockBox recording."""
    root = tmp_path_factory.mktemp("self-guard")
    factory = MockBoxFactory(root, confdir)
    spy_mocks, record_mocks = root / "spy", root / "record"
    write_mocks(spy_mocks, "m.yaml", MOCKS)
    write_mocks(record_mocks, "m.yaml", MOCKS)
    started = {
        "upstream": factory(spy_mocks, "--unmatched", "upstream"),
        "record": factory(record_mocks, "--session", "guard", command="record"),
    }
    yield started
    factory.stop_all()


@pytest.mark.parametrize("mode", ["upstream", "record"])
@pytest.mark.parametrize("which", ["admin", "proxy"])
@pytest.mark.parametrize("host", SPELLINGS)
def test_no_spelling_reaches_mockbox_itself(
    boxes: dict[str, MockBox], mode: str, which: str, host: str
) -> None:
    box = boxes[mode]
    port = box.admin_port if which == "admin" else box.port
    before = requests.get(f"{box.admin}/api/mocks", timeout=5).json()["total"]
    forged = {"Host": f"127.0.0.1:{port}"}  # what the admin server's own Host check expects
    for method, body in (("GET", None), ("POST", NEW_MOCK)):
        r = through_proxy(box, method, f"http://{host}:{port}/api/mocks", body, **forged)
        assert r.status == 403, (method, r.status, r.body[:300])
        assert r.headers["content-type"] == "application/json"
        assert r.headers["x-mockbox-source"] == "guard"
        assert r.json()["error"] == "FORWARD_TO_SELF_REFUSED"
        what = "its own admin server" if which == "admin" else "to itself"
        assert what in r.json()["message"] and str(port) in r.json()["message"]
    assert requests.get(f"{box.admin}/api/mocks", timeout=5).json()["total"] == before
    assert box.proc.poll() is None


@pytest.mark.parametrize("mode", ["upstream", "record"])
def test_other_targets_still_go_upstream(
    boxes: dict[str, MockBox], mode: str, upstream: Upstream
) -> None:
    box = boxes[mode]
    r = through_proxy(box, "GET", f"{upstream.url}/anything")
    assert (r.status, r.headers["x-mockbox-source"]) == (200, "upstream")
    assert upstream.count("/anything") == 1
    # and the admin server works, opened directly
    assert requests.get(f"{box.admin}/api/mocks", timeout=5).status_code == 200


def test_refusals_are_not_recorded(boxes: dict[str, MockBox]) -> None:
    box = boxes["record"]
    assert through_proxy(box, "GET", f"http://127.1:{box.admin_port}/healthz").status == 403
    assert box.mocks is not None
    recorded = box.mocks / "recorded" / "guard"
    written = [p.name for p in recorded.glob("*.yaml")] if recorded.is_dir() else []
    assert not [name for name in written if str(box.admin_port) in name or str(box.port) in name]


@pytest.mark.parametrize(
    "host", ["[::ffff:127.0.0.1]", "127.1", "2130706433", *([IPV4] if IPV4 else [])]
)
def test_tunnels_are_refused_at_the_connection(
    mockbox: MockBoxFactory, tmp_path: Path, host: str
) -> None:
    """TCP passthrough (ignore_hosts) opens the connection without an HTTP request to check:
    the connection itself is refused."""
    write_mocks(tmp_path / "mocks", "m.yaml", MOCKS)
    box = mockbox(
        tmp_path / "mocks",
        *("--admin-host", "0.0.0.0", "--unmatched", "upstream", "--set", "ignore_hosts=.*"),
        env=clean_env(MOCKBOX_ADMIN_TOKEN=TOKEN),
    )
    with socket.create_connection(("127.0.0.1", box.port), timeout=10) as s:
        s.sendall(f"CONNECT {host}:{box.admin_port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert s.recv(100).startswith(b"HTTP/1.1 200")  # lazy: it connects on the first byte
        auth = f"Authorization: Bearer {TOKEN}\r\n"
        s.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n".encode())
        assert s.recv(1000) == b""  # closed: nothing reached the admin server
    assert "does not forward requests to its own admin server" in box.log()


def test_an_interface_address_is_mine_when_mockbox_listens_on_all(
    mockbox: MockBoxFactory, tmp_path: Path
) -> None:
    if IPV4 is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    write_mocks(tmp_path / "mocks", "m.yaml", MOCKS)
    box = mockbox(
        tmp_path / "mocks",
        *("--host", "0.0.0.0", "--admin-host", "0.0.0.0", "--unmatched", "upstream"),
        env=clean_env(MOCKBOX_ADMIN_TOKEN=TOKEN),
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert requests.get(f"http://{IPV4}:{box.admin_port}/healthz", headers=auth).ok  # it listens
    for port, what in ((box.admin_port, "its own admin server"), (box.port, "to itself")):
        r = through_proxy(box, "GET", f"http://{IPV4}:{port}/healthz", **auth)
        assert (r.status, r.headers["x-mockbox-source"]) == (403, "guard")
        assert what in r.json()["message"]


def test_is_own_address() -> None:
    for ip in ("127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1", "0.0.0.0", "::"):
        assert is_own_address(ip), ip
    for ip in ("192.0.2.200", "2001:db8::1", "::ffff:192.0.2.200", "not an ip", "64:ff9b::7f00:1"):
        assert not is_own_address(ip), ip
    if IPV4:
        assert is_own_address(IPV4) and is_own_address(f"::ffff:{IPV4}")


async def test_a_connection_goes_to_the_address_that_was_checked() -> None:
    """server_connect resolves a name once and pins the connection to the address it checked,
    so DNS cannot answer differently between the check and the connect."""
    admin = next(a for a in stack.build() if isinstance(a, AdminServer))
    admin.bound = ("127.0.0.1", 8081)
    guard = SelfGuard(admin)

    def connecting(host: str, port: int) -> ServerConnectionHookData:
        return ServerConnectionHookData(
            client=tflow.tclient_conn(), server=Server(address=(host, port))
        )

    with taddons.context(guard):
        elsewhere = connecting("3221226184", 8081)  # 192.0.2.200 in decimal, not this machine
        await guard.server_connect(elsewhere)
        assert elsewhere.server.address == ("192.0.2.200", 8081) and not elsewhere.server.error
        for host in ("localhost", "0x7f.1", "::ffff:127.0.0.1"):
            mine = connecting(host, 8081)
            await guard.server_connect(mine)
            assert "own admin server (port 8081)" in str(mine.server.error), host
        unresolvable = connecting("no-such-host.invalid", 8081)
        await guard.server_connect(unresolvable)
        assert unresolvable.server.error == "cannot resolve no-such-host.invalid"
        other_port = connecting("3221226184", 443)  # not a port of MockBox's: left alone
        await guard.server_connect(other_port)
        assert other_port.server.address == ("3221226184", 443)
