"""The mock editor in a real browser (Debian's Chromium through Playwright): what a person does
on the page, checked where it matters, through the proxy with an HTTP client."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from playwright.sync_api import Page, expect

from .conftest import LLMServer, MockBox, MockBoxFactory, clean_env, write_mocks

SHOP = """\
# Users of the shop.
mocks:
  - name: get user
    request: {method: GET, host: api.shop.test, path: "/users/{id}"}
    response:
      body: {id: "{{ path.id | int }}", name: Ada}
"""

HELLO = """\
name: hello
request:
  method: GET
  host: api.ui.test
  path: /hello
response:
  body: {greeting: hi}
"""


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory, confdir: Path) -> Iterator[MockBox]:
    """One MockBox for the page tests; each test works on its own host and file."""
    work = tmp_path_factory.mktemp("ui")
    write_mocks(work / "mocks", "shop.yaml", SHOP)
    config = work / "config.yaml"
    # Reloading by interval is off: what the proxy serves changes because the editor saved.
    config.write_text(yaml.safe_dump({"unmatched": "404", "reload": {"interval": 0}}))
    factory = MockBoxFactory(work, confdir)
    yield factory(work / "mocks", "--config", str(config))
    factory.stop_all()


def open_page(launch_browser: Callable[..., Any], box: MockBox) -> Page:
    page: Page = launch_browser().new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{box.admin}/")
    page.wait_for_selector("body[data-ready=yes]")
    return page


def type_mock(page: Page, text: str) -> None:
    """Replace the code editor's text, as a paste would."""
    page.locator("#editor .cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(text)


def saved(page: Page) -> None:
    expect(page.locator("#status")).to_contain_text("Saved")


def admin_api(box: MockBox, method: str, path: str, **kw: Any) -> requests.Response:
    with requests.Session() as s:
        s.trust_env = False
        return s.request(method, box.admin + path, timeout=15, **kw)


def test_create_then_edit_a_mock(box: MockBox, launch_browser: Callable[..., Any]) -> None:
    page = open_page(launch_browser, box)
    page.get_by_role("button", name="New mock").click()
    type_mock(page, HELLO.replace("  body:", "  status: abc\n  body:"))
    # Inline problems from the server's checks, on the line and in the list below the editor.
    expect(page.locator("#problems")).to_have_text(
        "Line 7: response.status: 'abc' is not of type 'integer'"
    )
    expect(page.locator("#editor .cm-lintRange-error")).to_have_count(1)
    type_mock(page, HELLO)
    expect(page.locator("#problems")).to_have_text("No problems")
    page.get_by_label("Save into file").fill("ui/hello.yaml")
    page.get_by_role("button", name="Save", exact=True).click()
    saved(page)
    assert box.get("http://api.ui.test/hello").json() == {"greeting": "hi"}
    expect(page.get_by_role("button", name="/hello")).to_have_attribute("aria-current", "true")
    expect(page.locator("#mock-meta")).to_contain_text("ui/hello.yaml, line 2")

    type_mock(page, "# Says hello.\n" + HELLO.replace("hi}", "hello again}"))
    expect(page.locator("#dirty")).to_be_visible()
    page.keyboard.press("Control+s")
    saved(page)
    expect(page.locator("#dirty")).to_be_hidden()
    assert box.get("http://api.ui.test/hello").json() == {"greeting": "hello again"}
    text = (box.mocks / "ui" / "hello.yaml").read_text()
    assert text.startswith("mocks:\n  # Says hello.\n  - name: hello\n")

    page.get_by_role("button", name="Dark theme").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(page.get_by_role("button", name="Light theme")).to_have_attribute("aria-pressed", "true")


def test_generate_with_ai_then_save_copy_and_download(
    box: MockBox, launch_browser: Callable[..., Any]
) -> None:
    page = open_page(launch_browser, box)
    page.get_by_role("button", name="Generate with AI").click()
    dialog = page.get_by_role("dialog", name="Generate a mock with AI")
    dialog.get_by_label("Method").select_option("GET")
    dialog.get_by_label("URL").fill("http://api.shop.test/users/42")
    dialog.get_by_label("Description").fill("one user of the shop")
    dialog.get_by_label("Complexity").select_option("simple")
    dialog.get_by_role("button", name="Generate").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#explanation")).to_contain_text("AI (offline): Offline provider")
    expect(page.locator("#mock-title")).to_have_text("AI: GET /users/42")
    expect(page.get_by_label("Save into file")).to_have_value("generated/api.shop.test.yaml")
    expect(page.locator("#problems")).to_have_text("No problems")

    with page.expect_download() as download:
        page.get_by_role("button", name="Download body").click()
    body = json.loads(Path(download.value.path()).read_text())
    assert body["id"] == 42 and isinstance(body["name"], str)

    page.get_by_role("button", name="Save", exact=True).click()
    saved(page)
    assert box.get("http://api.shop.test/users/42").json() == body

    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy body").click()
    expect(page.locator("#status")).to_have_text("Body copied.")
    assert json.loads(page.evaluate("navigator.clipboard.readText()")) == body


def test_improve_with_ai_shows_a_diff_to_accept(
    box: MockBox, launch_browser: Callable[..., Any]
) -> None:
    page = open_page(launch_browser, box)
    page.get_by_role("button", name="/users/{id}").click()
    expect(page.locator("#mock-title")).to_have_text("get user")
    page.get_by_role("button", name="Improve with AI").click()
    dialog = page.get_by_role("dialog", name="Improve with AI")
    dialog.get_by_label("Instruction").fill("add a 404 case")
    dialog.get_by_role("button", name="Propose").click()
    expect(dialog.locator("#proposal-explanation")).to_have_text(
        "AI (offline): Added a mock answering 404 for /users/0 (a literal segment wins over {id})."
    )
    merge = dialog.locator(".cm-mergeView")
    expect(merge.get_by_label("Current mock")).to_contain_text("path: /users/{id}")
    expect(merge.get_by_label("Proposed mock")).to_contain_text("path: /users/0")
    expect(merge.locator(".cm-changedLine").first).to_be_visible()  # the added mock stands out
    dialog.get_by_role("button", name="Accept").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#extras")).to_have_text(
        "1 new mock(s) will be added after this one when you save."
    )
    page.get_by_role("button", name="Save", exact=True).click()
    saved(page)
    missing = box.get("http://api.shop.test/users/0")
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found", "message": "User 0 was not found."}
    assert box.get("http://api.shop.test/users/3").json() == {"id": 3, "name": "Ada"}
    text = (box.mocks / "shop.yaml").read_text()
    assert text.startswith(SHOP)  # the first mock, and its file's comment, untouched


def test_a_stale_save_shows_the_conflict(box: MockBox, launch_browser: Callable[..., Any]) -> None:
    created = admin_api(
        box,
        "POST",
        "/api/mocks",
        json={
            "file": "conflict.yaml",
            "mock": {
                "request": {"host": "api.c.test", "path": "/c"},
                "response": {"body": {"who": "original"}},
            },
        },
    )
    assert created.status_code == 201
    page = open_page(launch_browser, box)
    page.locator('#mock-list .item[data-id="conflict.yaml/0"]').click()
    expect(page.locator("#mock-title")).to_have_text("conflict.yaml/0")

    # A second client saves the mock after the page loaded it.
    theirs = created.json()["yaml"].replace("original", "someone else")
    other = admin_api(
        box,
        "PUT",
        "/api/mocks/conflict.yaml/0",
        json={"yaml": theirs},
        headers={"If-Match": created.headers["ETag"]},
    )
    assert other.status_code == 200

    type_mock(page, theirs.replace("someone else", "me"))
    page.get_by_role("button", name="Save", exact=True).click()
    alert = page.locator("#conflict")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("was changed by someone else")
    expect(page.locator("#status")).to_have_text("Not saved: someone else changed this mock.")
    assert box.get("http://api.c.test/c").json() == {"who": "someone else"}  # not overwritten

    page.get_by_role("button", name="Load their version").click()
    expect(alert).to_be_hidden()
    expect(page.locator("#editor .cm-content")).to_contain_text("who: someone else")
    type_mock(page, theirs.replace("someone else", "me, after reading theirs"))
    page.get_by_role("button", name="Save", exact=True).click()
    saved(page)
    assert box.get("http://api.c.test/c").json() == {"who": "me, after reading theirs"}


def test_traffic_view_saves_a_request_as_a_mock(
    box: MockBox, launch_browser: Callable[..., Any]
) -> None:
    box.get("http://api.shop.test/users/77")
    page = open_page(launch_browser, box)
    page.get_by_role("tab", name="Traffic").click()
    entry = page.get_by_role("button", name="/users/77").first
    expect(entry).to_contain_text("mock")
    entry.click()
    expect(page.locator("#traffic-meta")).to_contain_text("200 from mock (shop.yaml#get user)")
    page.get_by_role("button", name="Save as mock").click()
    expect(page.locator("#mock-title")).to_have_text("New mock from GET /users/77")
    expect(page.get_by_label("Save into file")).to_have_value("api.shop.test.yaml")
    type_mock(
        page,
        "name: user 77\nrequest: {method: GET, host: api.shop.test, path: /users/77}\n"
        "response: {body: {id: 77, name: Kept from traffic}}\n",
    )
    page.get_by_role("button", name="Save", exact=True).click()
    saved(page)
    assert box.get("http://api.shop.test/users/77").json() == {
        "id": 77,
        "name": "Kept from traffic",
    }


def test_a_spent_ai_budget_shows_when_to_retry(
    mockbox: MockBoxFactory,
    tmp_path: Path,
    llm_server: LLMServer,
    launch_browser: Callable[..., Any],
) -> None:
    llm_server.script = [
        {
            "answer": {
                "status": 200,
                "headers": {"Content-Type": "application/json"},
                "body": {"id": 1, "name": "Grace"},
                "explanation": "A user.",
            }
        }
    ]
    write_mocks(tmp_path / "mocks", "shop.yaml", SHOP)
    config = tmp_path / "config.yaml"
    ai = {
        "provider": "openai-compatible",
        "base_url": f"{llm_server.url}/v1",
        "model": "tiny",
        "max_retries": 0,
        "timeout": 5,
        "budget": {"total_tokens_per_day": 100},  # one call (200 tokens) spends it
    }
    config.write_text(yaml.safe_dump({"unmatched": "404", "ai": ai}))
    box = mockbox(tmp_path / "mocks", "--config", str(config), env=clean_env())
    page = open_page(launch_browser, box)
    expect(page.locator("#ai-provider")).to_have_text("AI: openai-compatible / tiny")

    def generate() -> None:
        page.get_by_role("button", name="Generate with AI").click()
        dialog = page.get_by_role("dialog", name="Generate a mock with AI")
        dialog.get_by_label("URL").fill("http://api.shop.test/users/1")
        dialog.get_by_role("button", name="Generate").click()

    generate()
    expect(page.locator("#explanation")).to_have_text("AI (openai-compatible, tiny): A user.")
    generate()
    error = page.get_by_role("dialog", name="Generate a mock with AI").get_by_role("alert")
    expect(error).to_contain_text("Rate limited: the daily AI tokens of all clients are spent")
    expect(error).to_contain_text("Retry in")
    assert len(llm_server.calls) == 1
