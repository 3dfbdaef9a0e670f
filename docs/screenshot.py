"""Takes the README's screenshots of the editor: docs/editor.png and docs/editor-improve.png.

    .venv/bin/python docs/screenshot.py

Starts `mockbox run` on a copy of the example mocks (free ports, offline AI), sends a few
requests through the proxy so the traffic view has something, and drives Debian's Chromium.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import requests
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from common import BIN, free_port, server  # noqa: E402


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="mockbox-shot-"))
    shutil.copytree(REPO / "mocks", work / "mocks")
    port, admin = free_port(), free_port()
    cmd = [str(BIN / "mockbox"), "run", "--mocks", str(work / "mocks"), "--port", str(port)]
    cmd += ["--admin-port", str(admin), "--set", f"confdir={work / 'conf'}"]
    with server(cmd, admin):
        session = requests.Session()
        session.trust_env = False
        proxy = {"http": f"http://127.0.0.1:{port}"}
        for path in ("/v1/books", "/v1/books/42", "/v1/authors/7", "/v1/nothing"):
            session.get(f"http://api.bookshop.test{path}", proxies=proxy, timeout=10)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1360, "height": 820})
            page.goto(f"http://127.0.0.1:{admin}/")
            page.wait_for_selector("body[data-ready=yes]")
            page.get_by_role("button", name="/v1/books/{id}").first.click()
            page.wait_for_selector("#problems li.ok")
            page.screenshot(path=str(REPO / "docs" / "editor.png"))
            page.get_by_role("button", name="Dark theme").click()
            page.get_by_role("button", name="Improve with AI").click()
            page.get_by_label("Instruction").fill("add a 404 case")
            page.get_by_role("button", name="Propose").click()
            page.wait_for_selector(".cm-mergeView .cm-changedLine")
            page.screenshot(path=str(REPO / "docs" / "editor-improve.png"))
            browser.close()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
