"""`mockbox import wiremock DIR` with mappings in WireMock's documented JSON format, then answers
through the proxy; what cannot be mapped is listed with file, line and place."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

from mockbox.core.library import MockLibrary
from mockbox.core.request import Headers, RequestView
from mockbox.core.templating import TemplateEngine
from mockbox.core.wiremock_import import import_wiremock

from .conftest import BIN, MockBoxFactory

MAPPINGS = {
    "users.json": {
        "name": "active users",
        "request": {"method": "GET", "url": "/api/users?active=true"},
        "response": {
            "status": 200,
            "headers": {"Content-Type": "application/json", "X-Total": "2"},
            "jsonBody": [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Grace"}],
        },
    },
    "user.json": {
        "request": {"method": "GET", "urlPathTemplate": "/api/users/{id}"},
        "response": {
            "status": 200,
            "headers": {"Content-Type": "application/json"},
            "body": '{"id": "any", "name": "Someone"}',
            "fixedDelayMilliseconds": 300,
        },
    },
    "orders.json": {
        "request": {
            "method": "POST",
            "urlPath": "/api/orders",
            "headers": {"Content-Type": {"equalTo": "application/json", "caseInsensitive": True}},
            "bodyPatterns": [
                {"equalToJson": {"book": 42}, "ignoreExtraElements": True},
                {"matchesJsonPath": {"expression": "$.qty", "matches": "[0-9]+"}},
            ],
        },
        "response": {"status": 201, "jsonBody": {"created": True}},
    },
    "xml.json": {
        "request": {
            "method": "GET",
            "urlPath": "/api/report",
            "headers": {"Accept": {"contains": "xml"}},
        },
        "response": {
            "status": 200,
            "headers": {"Content-Type": "application/xml"},
            "bodyFileName": "report.xml",
        },
    },
    "search.json": {
        "request": {
            "method": "ANY",
            "urlPath": "/api/search",
            "queryParameters": {"q": {"matches": "[a-z]+"}, "debug": {"absent": True}},
        },
        "response": {"status": 200, "body": "found"},
    },
    "flaky.json": {
        "request": {"method": "GET", "url": "/api/flaky"},
        "response": {"fault": "EMPTY_RESPONSE"},
    },
    "files.json": {
        "request": {"method": "GET", "urlPathPattern": "/files/[0-9]+/.*"},
        "response": {"status": 200, "body": "a file"},
    },
    "more.json": {
        "mappings": [
            {
                "request": {
                    "method": "POST",
                    "urlPath": "/soap",
                    "bodyPatterns": [{"matchesXPath": "//order[@id='1']"}],
                },
                "response": {"status": 200, "body": "<ok/>"},
            },
            {
                "priority": 1,
                "request": {"method": "GET", "urlPathPattern": "/api/users/[0-9]+/avatar"},
                "response": {
                    "status": 200,
                    "body": "Hello {{request.path.[0]}}",
                    "transformers": ["response-template"],
                },
            },
            {
                "scenarioName": "checkout",
                "requiredScenarioState": "Paid",
                "request": {"method": "GET", "url": "/api/cart"},
                "response": {"status": 200, "body": "paid"},
            },
        ]
    },
}


@pytest.fixture
def imported(tmp_path: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
    wm = tmp_path / "wm"
    (wm / "mappings").mkdir(parents=True)
    (wm / "__files").mkdir()
    (wm / "__files" / "report.xml").write_text("<report><total>3</total></report>")
    for name, mapping in MAPPINGS.items():
        (wm / "mappings" / name).write_text(json.dumps(mapping, indent=2))
    out = tmp_path / "mocks"
    done = subprocess.run(
        [str(BIN / "mockbox"), "import", "wiremock", str(wm), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out, done


def test_wiremock_mappings_answer_through_the_proxy(
    mockbox: MockBoxFactory, imported: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    out, done = imported
    assert done.returncode == 1  # some things could not be mapped, and they are listed
    assert "8 mapping(s) as mocks" in done.stderr
    box = mockbox(out, "--unmatched", "404")
    api = "http://wiremock.test"
    users = box.get(f"{api}/api/users", params={"active": "true"})
    assert users.json()[1]["name"] == "Grace" and users.headers["X-Total"] == "2"
    start = time.monotonic()
    one = box.get(f"{api}/api/users/abc")
    assert one.json()["name"] == "Someone" and time.monotonic() - start >= 0.3
    # A Handlebars body is served as written (and listed as not converted).
    assert box.get(f"{api}/api/users/7/avatar").text == "Hello {{request.path.[0]}}"
    order = box.request("POST", f"{api}/api/orders", json={"book": 42, "qty": 2, "gift": True})
    assert (order.status_code, order.json()) == (201, {"created": True})
    wrong = box.request("POST", f"{api}/api/orders", json={"book": 41, "qty": 2})
    assert wrong.status_code == 404
    xml = box.get(f"{api}/api/report", headers={"Accept": "application/xml"})
    assert xml.text == "<report><total>3</total></report>"
    assert xml.headers["Content-Type"] == "application/xml"
    assert box.get(f"{api}/api/report", headers={"Accept": "text/html"}).status_code == 404
    assert box.request("PUT", f"{api}/api/search", params={"q": "dune"}).text == "found"
    assert box.get(f"{api}/api/search", params={"q": "Dune!"}).status_code == 404
    assert box.get(f"{api}/api/search", params={"q": "dune", "debug": "1"}).status_code == 404
    with pytest.raises(requests.ConnectionError):
        box.get(f"{api}/api/flaky")
    assert box.get(f"{api}/files/12/a/b.txt").text == "a file"
    assert box.get(f"{api}/api/cart").status_code == 404  # not imported


def test_wiremock_unmappable_parts_are_listed(
    imported: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, done = imported
    more = out.parent / "wm" / "mappings" / "more.json"
    lines = more.read_text().splitlines()
    xpath_line = next(i for i, line in enumerate(lines, 1) if "matchesXPath" in line)
    assert (
        f"{more}:{xpath_line}: mappings.0.request.bodyPatterns.0.matchesXPath: unknown or "
        "unsupported body matcher 'matchesXPath'; mapping not imported"
    ) in done.stderr
    assert "mappings.2.requiredScenarioState: scenario 'checkout' state 'Paid'" in done.stderr
    assert "mappings.1.response.transformers: WireMock templating is not converted" in done.stderr
    files = out.parent / "wm" / "mappings" / "files.json"
    assert (
        f"{files}:4: request.urlPathPattern: imported as '/files/{{p1}}/{{rest*}}': the segment "
        "pattern(s) [0-9]+ now match any segment (imported without it)"
    ) in done.stderr


def test_wiremock_priority_and_names_carry_over(
    imported: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, _ = imported
    mocks = {m["name"]: m for m in yaml.safe_load((out / "wm.yaml").read_text())["mocks"]}
    assert mocks["GET /api/users/{p1}/avatar"]["priority"] == 4  # WireMock 1 (highest) of 5
    assert "priority" not in mocks["active users"]
    assert mocks["GET /api/report"]["response"]["body_file"] == "wm.files/report.xml"
    assert (out / "wm.files" / "report.xml").exists()


def test_wiremock_regexes_are_imported_only_when_re2_runs_them(tmp_path: Path) -> None:
    """Mock regexes run on RE2 (issue 13): what needs a lookaround (doesNotMatch, several
    cookies in any order, a Java pattern with one) is not imported, and says why; a single
    cookie imports as a regex that loads and matches."""
    stubs = {
        "mappings": [
            {"request": {"url": "/a", "headers": {"X": {"doesNotMatch": "x.*"}}}},
            {"request": {"url": "/b", "cookies": {"s": {"equalTo": "1"}, "t": {"equalTo": "2"}}}},
            {"request": {"url": "/c", "queryParameters": {"q": {"matches": "(?!admin).*"}}}},
            {"request": {"url": "/d", "cookies": {"session": {"equalTo": "a.b"}}}},
        ]
    }
    (tmp_path / "wm").mkdir()
    (tmp_path / "wm" / "stubs.json").write_text(json.dumps(stubs, indent=2))
    result = import_wiremock(tmp_path / "wm")
    problems = "\n".join(result.problems)
    assert "mappings.0.request.headers.X.doesNotMatch: doesNotMatch cannot be written" in problems
    assert "mappings.1.request.cookies: only one cookie matcher can be imported" in problems
    assert "mappings.2.request.queryParameters.q.matches: bad regex '^(?:(?!admin).*)$': " in (
        problems
    )
    assert "negative lookahead" in problems
    (mock,) = result.mocks
    (tmp_path / "mocks").mkdir()
    (tmp_path / "mocks" / "m.yaml").write_text(yaml.safe_dump({"mocks": [mock]}))
    library = MockLibrary(tmp_path / "mocks", TemplateEngine())
    assert library.refresh().problems == []
    cookie = Headers([("Cookie", "a=1; session=a.b; z=2")])
    assert library.index.match(RequestView("GET", "http", "h", 80, "/d", (), cookie)) is not None
    other = Headers([("Cookie", "session=a.bc")])
    assert library.index.match(RequestView("GET", "http", "h", 80, "/d", (), other)) is None
