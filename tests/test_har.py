"""HAR: capture one with headless Chromium through MockBox, import it, replay it; a truncated HAR
imports its complete entries; a session exports back to HAR."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .conftest import BIN, MockBoxFactory, Upstream

PAGE = b"""<!doctype html>
<html><head><title>Shop</title></head><body><h1>Shop</h1><ul id="books"></ul>
<img src="/logo.png">
<script>
fetch("/api/books?page=1", {headers: {"Authorization": "Bearer har-secret-7731"}})
  .then(r => r.json()).then(books => {
    for (const b of books) {
      const li = document.createElement("li"); li.textContent = b.title;
      document.getElementById("books").appendChild(li);
    }
    document.body.dataset.loaded = "yes";
  });
</script></body></html>
"""
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
LOOPBACK_THROUGH_PROXY = ("--proxy-bypass-list=<-loopback>",)  # Chromium skips it otherwise


def _mockbox_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "mockbox"), *args], capture_output=True, text=True, timeout=120
    )


def _browse(
    launch_browser: Callable[..., Any], proxy: str, url: str, har: Path | None
) -> list[str]:
    browser = launch_browser(proxy=proxy, extra_args=LOOPBACK_THROUGH_PROXY)
    context = browser.new_context(record_har_path=str(har)) if har else browser.new_context()
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("body[data-loaded=yes]", timeout=15000)
    titles: list[str] = page.locator("#books li").all_text_contents()
    context.close()  # writes the HAR
    return titles


def test_chromium_har_import_and_replay(
    mockbox: MockBoxFactory,
    upstream: Upstream,
    tmp_path: Path,
    launch_browser: Callable[..., Any],
) -> None:
    upstream.routes["/"] = (200, {"Content-Type": "text/html; charset=utf-8"}, PAGE)
    upstream.routes["/api/books?page=1"] = (
        200,
        {"Content-Type": "application/json"},
        json.dumps([{"title": "Dune"}, {"title": "Ubik"}]).encode(),
    )
    upstream.routes["/logo.png"] = (200, {"Content-Type": "image/png"}, PNG)
    passthrough = mockbox(tmp_path / "empty", "--unmatched", "upstream")
    har = tmp_path / "shop.har"
    assert _browse(launch_browser, passthrough.proxy, f"{upstream.url}/", har) == ["Dune", "Ubik"]
    entries = json.loads(har.read_text())["log"]["entries"]
    assert {e["request"]["url"].split("/", 3)[3] for e in entries} >= {"", "api/books?page=1"}
    passthrough.stop()
    upstream.server.shutdown()
    upstream.server.server_close()

    mocks = tmp_path / "mocks"
    done = _mockbox_cli("import", "har", str(har), "--out", str(mocks / "recorded" / "shop"))
    assert done.returncode == 0, done.stderr
    assert f"{len(entries)} of {len(entries)} entries into 1 file(s)" in done.stderr
    written = b"".join(p.read_bytes() for p in (mocks / "recorded").rglob("*") if p.is_file())
    assert b"har-secret-7731" not in written

    replay = mockbox(mocks, "--session", "shop", command="replay")
    assert _browse(launch_browser, replay.proxy, f"{upstream.url}/", None) == ["Dune", "Ubik"]
    logo = replay.get(f"{upstream.url}/logo.png")
    assert logo.content == PNG and logo.headers["X-MockBox-Source"] == "mock"

    # A HAR cut short: the complete entries import, and the break is named by line and column.
    text = har.read_text()
    cut = tmp_path / "cut.har"
    cut.write_text(text[: text.index('"/logo.png"') if '"/logo.png"' in text else len(text) // 2])
    partial = _mockbox_cli("import", "har", str(cut), "--out", str(tmp_path / "cut"))
    assert partial.returncode == 1
    assert f"{cut}:" in partial.stderr and "the HAR is cut short or broken" in partial.stderr
    assert "complete entries before it were imported" in partial.stderr
    assert list((tmp_path / "cut").glob("*.yaml"))

    # Export the session back to HAR, import that, and the same answers come back.
    exported = tmp_path / "export.har"
    out = _mockbox_cli(
        "export", "har", "--session", "shop", "--mocks", str(mocks), "--out", str(exported)
    )
    assert out.returncode == 0, out.stderr
    log = json.loads(exported.read_text())["log"]
    assert log["creator"]["name"] == "MockBox"
    books = next(e for e in log["entries"] if "/api/books" in e["request"]["url"])
    assert books["request"]["url"] == f"{upstream.url}/api/books?page=1"
    assert json.loads(books["response"]["content"]["text"]) == [
        {"title": "Dune"},
        {"title": "Ubik"},
    ]
    again = _mockbox_cli("import", "har", str(exported), "--out", str(mocks / "recorded" / "again"))
    assert again.returncode == 0, again.stderr
    twice = mockbox(mocks, "--session", "again", command="replay")
    assert twice.get(f"{upstream.url}/api/books?page=1").json()[1]["title"] == "Ubik"
    assert twice.get(f"{upstream.url}/logo.png").content == PNG


def test_har_that_is_not_a_har(tmp_path: Path) -> None:
    bad = tmp_path / "bad.har"
    bad.write_text('{"log": {"version": "1.2"}}')
    done = _mockbox_cli("import", "har", str(bad), "--out", str(tmp_path / "o"))
    assert done.returncode == 2 and "not a HAR file: no log.entries list" in done.stderr
    entry_without_response = tmp_path / "odd.har"
    entry_without_response.write_text(
        json.dumps({"log": {"entries": [{"request": {"method": "GET", "url": "http://a.test/"}}]}})
    )
    done = _mockbox_cli("import", "har", str(entry_without_response), "--out", str(tmp_path / "p"))
    assert done.returncode == 1 and "log.entries[0]: no response (status 0); skipped" in done.stderr


LEGACY_SESSION = """\
mocks:
  - name: token
    request:
      method: POST
      host: api.legacy.test
      path: /oauth/token
      query: {client_id: web, api_key: ak-Legacy-Query-Key-01}
      body: {json: {username: ann, password: pw-Legacy-Password-02}}
    response:
      headers:
        Content-Type: application/json
        Set-Cookie: "sid=ck-Legacy-Cookie-03; HttpOnly"
        X-GitHub-Token: ghp_LegacyGithubToken04abcdef
        X-Trace: t-1
      body:
        access_token: at-Legacy-Access-05
        token_type: Bearer
        user: {name: Ann, client_secret: cs-Legacy-Secret-06}
"""
LEGACY_SECRETS = [
    "ak-Legacy-Query-Key-01",
    "pw-Legacy-Password-02",
    "ck-Legacy-Cookie-03",
    "ghp_LegacyGithubToken04abcdef",
    "at-Legacy-Access-05",
    "cs-Legacy-Secret-06",
]


def test_export_redacts_a_session_written_before_the_rules(tmp_path: Path) -> None:
    """A session recorded by an older MockBox, or edited by hand, still holds secrets: the
    HAR written from it must not, and everything else is exported as it is."""
    mocks = tmp_path / "mocks"
    (mocks / "recorded" / "legacy").mkdir(parents=True)
    (mocks / "recorded" / "legacy" / "api.yaml").write_text(LEGACY_SESSION)
    target = tmp_path / "legacy.har"
    out = _mockbox_cli(
        "export", "har", "--session", "legacy", "--mocks", str(mocks), "--out", str(target)
    )
    assert out.returncode == 0, out.stderr
    text = target.read_text()
    assert all(s in LEGACY_SESSION for s in LEGACY_SECRETS)
    assert [s for s in LEGACY_SECRETS if s in text] == []
    (entry,) = json.loads(text)["log"]["entries"]
    request, response = entry["request"], entry["response"]
    assert request["url"] == "https://api.legacy.test/oauth/token?client_id=web&api_key=REDACTED"
    assert json.loads(request["postData"]["text"]) == {"username": "ann", "password": "REDACTED"}
    headers = {h["name"]: h["value"] for h in response["headers"]}
    assert headers["Set-Cookie"] == "sid=REDACTED; HttpOnly"
    assert headers["X-GitHub-Token"] == "REDACTED" and headers["X-Trace"] == "t-1"
    assert json.loads(response["content"]["text"]) == {
        "access_token": "REDACTED",
        "token_type": "Bearer",
        "user": {"name": "Ann", "client_secret": "REDACTED"},
    }
