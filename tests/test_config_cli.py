"""Configuration precedence (defaults < file < environment < flags) and the command line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import requests

from .conftest import BIN, REPO, MockBoxFactory, clean_env, free_port, write_mocks


def test_environment_overrides_file_and_flags_override_both(
    mockbox: MockBoxFactory, tmp_path: Path
) -> None:
    config = tmp_path / "mockbox.yaml"
    config.write_text("region: from-file\nunmatched: upstream\n")
    box = mockbox(REPO / "mocks", "--config", str(config))
    assert (box.health()["region"], box.health()["unmatched"]) == ("from-file", "upstream")

    env = clean_env(MOCKBOX_REGION="from-env", MOCKBOX_UNMATCHED="404")
    box = mockbox(REPO / "mocks", "--config", str(config), env=env)
    assert (box.health()["region"], box.health()["unmatched"]) == ("from-env", "404")

    box = mockbox(REPO / "mocks", "--config", str(config), "--region", "from-flag", env=env)
    assert box.health()["region"] == "from-flag"


def test_mocks_folder_from_environment(mockbox: MockBoxFactory, tmp_path: Path) -> None:
    mocks = tmp_path / "elsewhere"
    write_mocks(mocks, "m.yaml", "mocks:\n  - request: {path: /env}\n    response: {body: env}\n")
    box = mockbox(None, env=clean_env(MOCKBOX_MOCKS=str(mocks)))
    assert box.get("http://e.test/env").text == "env"


def run_mockbox(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "mockbox"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env or clean_env(),
    )


def test_bad_configuration_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("region: x\nproxy:\n  prot: 1\n")
    out = run_mockbox("run", "--config", str(config), "--port", str(free_port()))
    assert out.returncode == 2
    assert f"{config}:3: unknown key 'proxy.prot'" in out.stderr
    out = run_mockbox("run", "--port", str(free_port()), env=clean_env(MOCKBOX_UNMATCHED="maybe"))
    assert out.returncode == 2 and "unmatched must be one of ai, 404, upstream" in out.stderr
    out = run_mockbox("run", "--port", str(free_port()), env=clean_env(MOCKBOX_PORT="eighty"))
    assert out.returncode == 2 and "MOCKBOX_PORT: expected int, got 'eighty'" in out.stderr


def test_admin_refuses_to_listen_beyond_loopback_without_a_token() -> None:
    out = run_mockbox(
        "run", "--port", str(free_port()), "--admin-host", "0.0.0.0", "--mocks", str(REPO / "mocks")
    )
    assert out.returncode == 2
    assert "without a token: set MOCKBOX_ADMIN_TOKEN" in out.stderr


def test_admin_beyond_loopback_with_token(mockbox: MockBoxFactory) -> None:
    env = clean_env(MOCKBOX_ADMIN_TOKEN="s3cret-long-enough-token")
    box = mockbox(REPO / "mocks", "--admin-host", "0.0.0.0", env=env)
    assert requests.get(f"{box.admin}/healthz", timeout=5).json()["status"] == "ok"


def test_banner_tells_how_to_use_it(mockbox: MockBoxFactory) -> None:
    box = mockbox(REPO / "mocks")
    log = box.log()
    assert f"proxy  http://127.0.0.1:{box.port}  (regular mode)" in log
    assert f"export HTTP_PROXY=http://127.0.0.1:{box.port} HTTPS_PROXY=" in log
    assert f"curl -x http://127.0.0.1:{box.port} http://api.bookshop.test/v1/books" in log
    assert str(box.ca_cert) in log
    assert "16 mocks" in log


def test_admin_port_in_use_is_reported(mockbox: MockBoxFactory) -> None:
    first = mockbox(REPO / "mocks")
    out = run_mockbox(
        "run",
        "--port",
        str(free_port()),
        "--admin-port",
        str(first.admin_port),
        "--mocks",
        str(REPO / "mocks"),
    )
    assert out.returncode != 0
    assert f"admin server cannot listen on 127.0.0.1:{first.admin_port}" in out.stdout + out.stderr
