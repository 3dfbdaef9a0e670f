"""The two mock-format additions: `responses:` sequences (per-instance call counters, reset on
reload and on demand) and `openapi:` operation schemas kept with a mock."""

from __future__ import annotations

from pathlib import Path

import requests

from mockbox.core.mockfile import LoadedFile, load_mock_file
from mockbox.core.templating import TemplateEngine

from .conftest import MockBox, MockBoxFactory, wait_until, write_mocks

SEQUENCE = """\
mocks:
  - name: job status
    request: {method: GET, path: /jobs/1}
    responses:
      - {body: {state: queued}}
      - {status: 202, body: {state: running}}
      - {body: {state: done}}
  - name: plain
    request: {method: GET, path: /plain}
    response: {body: same}
"""


def _states(box: MockBox, n: int) -> list[str]:
    return [box.get("http://jobs.test/jobs/1").json()["state"] for _ in range(n)]


def test_sequence_then_last_repeats_and_resets(mockbox: MockBoxFactory, tmp_path: Path) -> None:
    mocks = tmp_path / "mocks"
    write_mocks(mocks, "jobs.yaml", SEQUENCE)
    box = mockbox(mocks)
    first = box.get("http://jobs.test/jobs/1")
    assert (first.status_code, first.json()) == (200, {"state": "queued"})
    second = box.get("http://jobs.test/jobs/1")
    assert (second.status_code, second.json()) == (202, {"state": "running"})
    assert _states(box, 3) == ["done", "done", "done"]
    assert box.get("http://jobs.test/plain").text == "same"

    calls = requests.get(f"{box.admin}/api/sequences", timeout=5).json()["calls"]
    assert calls == {"jobs.yaml#job status": 5}
    reset = requests.post(f"{box.admin}/api/sequences/reset?mock=job status", timeout=5).json()
    assert reset == {"reset": 1}
    assert _states(box, 2) == ["queued", "running"]

    # Reloading the mock (an edit of its file) starts its sequence over too.
    write_mocks(mocks, "jobs.yaml", SEQUENCE.replace("state: done", "state: finished"))
    wait_until(lambda: _states(box, 1) == ["queued"], 10, "reloaded sequence starts over")
    assert _states(box, 3) == ["running", "finished", "finished"]


def _load(tmp_path: Path, text: str) -> LoadedFile:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return load_mock_file(path, tmp_path, TemplateEngine())


def test_response_and_responses_are_exclusive(tmp_path: Path) -> None:
    both = _load(
        tmp_path,
        "mocks:\n  - request: {path: /a}\n    response: {body: x}\n    responses: [{body: y}]\n",
    )
    (problem,) = both.problems
    assert problem.line == 2 and "either `response` or `responses`" in problem.message
    empty = _load(tmp_path, "mocks:\n  - request: {path: /a}\n    responses: []\n")
    assert "should be non-empty" in str(empty.problems[0])


OPENAPI_MOCK = """\
mocks:
  - name: getPet
    request: {method: GET, path: "/pet/{petId}"}
    response: {body: {id: 1, name: Rex}}
    openapi:
      operation_id: getPetById
      method: GET
      path: "/pet/{petId}"
      status: "200"
      content_type: application/json
      response_schema:
        $ref: "#/$defs/Pet"
        $defs:
          Pet:
            type: object
            required: [id, name]
            properties:
              id: {type: integer}
              name: {type: string}
"""


def test_openapi_schema_is_kept_and_validates_answers(tmp_path: Path) -> None:
    loaded = _load(tmp_path, OPENAPI_MOCK)
    (mock,) = loaded.mocks
    op = mock.openapi
    assert op.operation_id == "getPetById" and op.status == "200"
    assert op.response_problems({"id": 1, "name": "Rex"}) == []
    assert op.response_problems({"id": "one"}) == [
        "$: 'name' is a required property",
        "$.id: 'one' is not of type 'integer'",
    ]
    assert op.request_problems({"anything": True}) == []  # no request schema: nothing to check


def test_openapi_bad_schema_names_its_line(tmp_path: Path) -> None:
    bad = OPENAPI_MOCK.replace("id: {type: integer}", "id: {type: whole-number}")
    loaded = _load(tmp_path, bad)
    (problem,) = loaded.problems
    assert problem.line == 18 and problem.mock == "getPet"  # the line of the bad keyword
    assert "response_schema is not a valid JSON Schema at $defs/Pet/properties/id/type" in (
        problem.message
    )
