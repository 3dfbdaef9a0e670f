"""A real browser through MockBox: a mocked page whose fetch() calls are mocked too."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .conftest import MockBoxFactory, write_mocks

PAGE = """<!doctype html>
<html><body><h1>Shop</h1><ul id="books"></ul>
<script>
fetch("/api/books").then(r => r.json()).then(books => {
  for (const b of books) {
    const li = document.createElement("li"); li.textContent = b.title;
    document.getElementById("books").appendChild(li);
  }
  document.body.dataset.loaded = "yes";
});
</script></body></html>
"""


def test_browser_renders_mocked_page_and_api(
    mockbox: MockBoxFactory, tmp_path: Path, launch_browser: Callable[..., Any]
) -> None:
    mocks = tmp_path / "mocks"
    write_mocks(mocks, "index.html", PAGE)
    write_mocks(
        mocks,
        "site.yaml",
        """
mocks:
  - request: {method: GET, host: shop.test, path: /}
    response: {body_file: index.html}
  - request: {method: GET, host: shop.test, path: /api/books}
    response: {body: [{title: "{{ fake.catch_phrase() }}"}, {title: Dune}]}
""",
    )
    box = mockbox(mocks)
    browser = launch_browser(proxy=box.proxy)
    page = browser.new_page()
    page.goto("http://shop.test/")
    page.wait_for_selector("body[data-loaded=yes]", timeout=15000)
    titles = page.locator("#books li").all_text_contents()
    assert len(titles) == 2 and titles[1] == "Dune" and titles[0]
    assert page.locator("h1").text_content() == "Shop"
