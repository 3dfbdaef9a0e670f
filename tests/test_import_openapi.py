"""`mockbox import openapi` with the real Petstore 3 document, then answers through the proxy."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import yaml

from mockbox.core.library import MockLibrary
from mockbox.core.openapi_import import import_openapi
from mockbox.core.templating import TemplateEngine

from .conftest import BIN, MockBoxFactory

PETSTORE = Path(__file__).parent / "fixtures" / "petstore3.openapi.yaml"


def _import(src: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "mockbox"), "import", "openapi", str(src), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_petstore_imports_and_answers(mockbox: MockBoxFactory, tmp_path: Path) -> None:
    out = tmp_path / "mocks"
    done = _import(PETSTORE, out)
    assert done.returncode == 0, done.stderr
    assert "19 operation(s) as mocks" in done.stderr and "no problems" in done.stderr
    target = out / "petstore3.openapi.yaml"
    first = target.read_text()
    assert _import(PETSTORE, tmp_path / "again").returncode == 0
    assert (tmp_path / "again" / target.name).read_text() == first  # deterministic
    mocks = {m["name"]: m for m in yaml.safe_load(first)["mocks"]}
    assert mocks["getPetById"]["request"] == {"method": "GET", "path": "/v3/pet/{petId}"}
    kept = mocks["getPetById"]["openapi"]
    assert (kept["operation_id"], kept["status"], kept["content_type"]) == (
        "getPetById",
        "200",
        "application/json",
    )
    assert kept["response_schema"]["$ref"] == "#/$defs/Pet"
    assert mocks["addPet"]["openapi"]["request_schema"]["$ref"] == "#/$defs/Pet"

    box = mockbox(out, "--unmatched", "404")
    pet = box.get("http://petstore.test/v3/pet/42")
    assert pet.status_code == 200 and pet.headers["Content-Type"] == "application/json"
    jsonschema.validate(pet.json(), kept["response_schema"])  # schema-valid
    assert pet.json()["name"] == "doggie"  # the property's documented example
    pets = box.get("http://petstore.test/v3/pet/findByStatus", params={"status": "sold"})
    assert isinstance(pets.json(), list)
    inventory = box.get("http://petstore.test/v3/store/inventory").json()
    assert all(isinstance(v, int) for v in inventory.values())
    login = box.get("http://petstore.test/v3/user/login")
    assert isinstance(login.json(), str)  # a JSON string, not bare text
    created = box.request("POST", "http://petstore.test/v3/user", json={"username": "x"})
    assert created.status_code == 200  # `default` response
    deleted = box.request("DELETE", "http://petstore.test/v3/pet/1")
    assert deleted.status_code == 400  # the only response declared
    assert box.get("http://petstore.test/v3/nope").status_code == 404


BROKEN = """\
openapi: 3.1.0
info: {title: Broken, version: "1"}
servers:
  - url: https://api.broken.test/v1
paths:
  /things/{id}:
    get:
      operationId: getThing
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema:
                type: object
                required: [id, owner]
                properties:
                  id: {type: integer, minimum: 1}
                  owner: {$ref: "#/components/schemas/Owner"}
  /gone:
    get:
      operationId: getGone
      responses:
        "200":
          $ref: "#/components/responses/Missing"
  /search:
    get:
      operationId: search
      parameters:
        - {name: q, in: query, required: true, schema: {type: string}}
      responses:
        "200":
          description: ok
          content:
            application/json:
              examples:
                one: {value: {hits: [dune]}}
  /feed:
    get:
      responses:
        "200":
          description: an XML feed
          content:
            application/xml:
              schema: {type: object, properties: {title: {type: string}}}
components:
  schemas:
    Thing: {type: object}
"""


def test_broken_refs_are_reported_and_the_rest_imports(
    mockbox: MockBoxFactory, tmp_path: Path
) -> None:
    src = tmp_path / "broken.yaml"
    src.write_text(BROKEN)
    out = tmp_path / "mocks"
    done = _import(src, out)
    assert done.returncode == 1
    assert (
        f"{src}:19: paths./things/{{id}}.get.responses.200.content.application/json.schema."
        "properties.owner.$ref: $ref '#/components/schemas/Owner' does not resolve"
    ) in done.stderr
    assert (
        f"{src}:25: paths./gone.get.responses.200.$ref: $ref '#/components/responses/Missing' "
        "does not resolve"
    ) in done.stderr
    assert "4 operation(s) as mocks" in done.stderr
    assert "paths./feed.get.responses.200.content.application/xml: only JSON answers" in (
        done.stderr
    )
    box = mockbox(out, "--unmatched", "404")
    thing = box.get("https://api.broken.test/v1/things/7")
    assert thing.status_code == 200 and thing.json()["id"] >= 1 and "owner" in thing.json()
    assert box.get("https://api.broken.test/v1/gone").status_code == 200
    assert box.get("https://api.broken.test/v1/search", params={"q": "x"}).json() == {
        "hits": ["dune"]
    }
    feed = box.get("https://api.broken.test/v1/feed")
    assert (feed.status_code, feed.content, feed.headers["Content-Type"]) == (
        200,
        b"",
        "application/xml",
    )
    missing_q = box.get("https://api.broken.test/v1/search")
    assert missing_q.status_code == 404  # the required query parameter is matched


def test_json_documents_import_too(tmp_path: Path) -> None:
    src = tmp_path / "broken.json"
    src.write_text(json.dumps(yaml.safe_load(BROKEN), indent=2))
    done = _import(src, tmp_path / "out")
    assert done.returncode == 1 and "4 operation(s) as mocks" in done.stderr
    assert (
        f"{src}:" in done.stderr and "'#/components/schemas/Owner' does not resolve" in done.stderr
    )


def test_not_openapi_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "swagger.yaml"
    src.write_text("swagger: '2.0'\npaths: {}\n")
    done = _import(src, tmp_path / "out")
    assert done.returncode == 2
    assert f"{src}:1: not an OpenAPI 3.0/3.1 document (no `openapi:` version)" in done.stderr


LOOKAHEAD = """\
openapi: 3.0.3
info: {title: Codes, version: "1"}
servers: [{url: "https://api.codes.test"}]
paths:
  /codes/{id}:
    get:
      parameters: [{name: id, in: path, required: true, schema: {type: string}}]
      responses:
        "200":
          description: a code
          content:
            application/json:
              schema:
                type: object
                properties:
                  code: {type: string, pattern: "^(?!X)[A-Z]{3}$", example: ABC}
"""


def test_a_schema_re2_cannot_run_is_left_out_and_named(tmp_path: Path) -> None:
    """Mock schemas run their patterns on RE2 (issue 13): an imported schema with a lookahead
    is left out of the mock, with the place and the reason, so the mock still loads."""
    src = tmp_path / "codes.yaml"
    src.write_text(LOOKAHEAD)
    result = import_openapi(src)
    (problem,) = result.problems
    assert problem.startswith(
        f"{src}:16: paths./codes/{{id}}.get.responses.200.content.application/json.schema."
        "properties.code.pattern: the schema is left out of the mock: bad regex"
    )
    assert "negative lookahead `(?!...)` is not supported by RE2" in problem
    (mock,) = result.mocks
    assert "response_schema" not in mock["openapi"]
    (tmp_path / "mocks").mkdir()
    (tmp_path / "mocks" / "m.yaml").write_text(yaml.safe_dump({"mocks": [mock]}))
    assert MockLibrary(tmp_path / "mocks", TemplateEngine()).refresh().problems == []
