"""`mockbox import openapi`: each operation of an OpenAPI 3.0/3.1 document becomes a mock.

The answer is the operation's declared example when it has one, otherwise a body generated from
the response schema by `jsf` (seeded per operation, so the same document gives the same mocks,
and checked against the schema with jsonschema). $refs are resolved with `referencing`; the
schemas kept with each mock are bundled (every $ref under `$defs`), so they stand alone. A $ref
that does not resolve is reported with its file, line and place, and the rest still imports.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jsonschema
from faker import Faker
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from .mockwriter import ImportResult, literal_response
from .yamlsrc import DocPath, SourcedDocument, YamlSyntaxError, load_sourced

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_BASE = "urn:mockbox:openapi"
_NOT_SCHEMA_KEYS = frozenset({"example", "examples", "enum", "const", "default"})
_SEEDS = 5  # generation attempts before an operation's body is given up on


class _Spec:
    """The parsed document, a $ref resolver over it, and the problems found, with lines."""

    def __init__(self, path: Path, doc: SourcedDocument) -> None:
        self.path, self.doc, self.data = path, doc, doc.data
        self.v30 = str(self.data.get("openapi", "")).startswith("3.0")
        resource = DRAFT202012.create_resource(self.data)
        self.resolver = Registry().with_resource(_BASE, resource).resolver(base_uri=_BASE)
        self.problems: list[str] = []

    def problem(self, place: DocPath, message: str) -> None:
        where = ".".join(str(p) for p in place)
        self.problems.append(f"{self.path}:{self.doc.line_of(place)}: {where}: {message}")

    def lookup(self, ref: str) -> tuple[Any, DocPath]:
        """The target of a local $ref and its place; raises ValueError when it has none."""
        if not ref.startswith("#/"):
            raise ValueError(f"$ref {ref!r} points outside this document; not followed")
        try:
            target = self.resolver.lookup(ref).contents
        except Unresolvable:
            raise ValueError(f"$ref {ref!r} does not resolve") from None
        tokens = [unquote(t).replace("~1", "/").replace("~0", "~") for t in ref[2:].split("/")]
        place: DocPath = tuple(int(t) if t.isdigit() else t for t in tokens)
        return target, place

    def deref(self, node: Any, place: DocPath) -> tuple[Any, DocPath] | None:
        """Follow a (non-schema) object's $ref chain; None, and a problem, when it breaks."""
        for _ in range(20):
            if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)):
                return node, place
            try:
                node, place = self.lookup(node["$ref"])
            except ValueError as e:
                self.problem((*place, "$ref"), str(e))
                return None
        self.problem(place, "$ref chain longer than 20 links")
        return None


class _Bundler:
    """Copies one schema with every $ref it reaches moved under `$defs` (OpenAPI 3.0's
    `nullable` and boolean exclusive bounds turned into JSON Schema 2020-12 on the way)."""

    def __init__(self, spec: _Spec) -> None:
        self.spec = spec
        self.defs: dict[str, Any] = {}
        self.names: dict[str, str] = {}

    def bundle(self, schema: Any, place: DocPath) -> Any:
        body = self._walk(schema, place)
        if self.defs and isinstance(body, dict):
            body = {**body, "$defs": dict(self.defs)}
        return body

    def _walk(self, node: Any, place: DocPath) -> Any:
        if isinstance(node, list):
            return [self._walk(v, (*place, i)) for i, v in enumerate(node)]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                name = self._define(value, (*place, "$ref"))
                if name is not None:
                    out["$ref"] = f"#/$defs/{name}"
            elif key in _NOT_SCHEMA_KEYS or str(key).startswith("x-"):
                out[key] = value
            else:
                out[key] = self._walk(value, (*place, key))
        return _from_openapi_30(out) if self.spec.v30 else out

    def _define(self, ref: str, place: DocPath) -> str | None:
        if ref in self.names:
            return self.names[ref]
        try:
            target, target_place = self.spec.lookup(ref)
        except ValueError as e:
            self.spec.problem(place, f"{e}; that part of the schema is left open")
            return None
        base = re.sub(r"[^A-Za-z0-9_.-]", "_", str(target_place[-1])) or "def"
        name, n = base, 1
        while name in self.defs:
            n += 1
            name = f"{base}{n}"
        self.names[ref] = name
        self.defs[name] = {}  # reserved first, so a recursive schema refers to itself
        self.defs[name] = self._walk(target, target_place)
        return name


def _from_openapi_30(node: dict[str, Any]) -> dict[str, Any]:
    if node.pop("nullable", False) is True and "type" in node:
        types = node["type"] if isinstance(node["type"], list) else [node["type"]]
        node["type"] = [*types, "null"]
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        # `exclusiveMinimum: true` (3.0) says the `minimum` itself is excluded.
        if isinstance(node.get(bound), bool) and node.pop(bound) and limit in node:
            node[bound] = node.pop(limit)
    return node


def import_openapi(path: Path, progress: Callable[[int, int], None] | None = None) -> ImportResult:
    result = ImportResult(path)
    try:
        doc = load_sourced(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        result.problems.append(f"{path}: cannot read: {e}")
        result.fatal = True
        return result
    except YamlSyntaxError as e:
        result.problems.append(f"{path}:{e.line}: not valid YAML or JSON: {e}")
        result.fatal = True
        return result
    data = doc.data
    version = str(data.get("openapi", "")) if isinstance(data, dict) else ""
    if not re.match(r"^3\.[01]\.", version):
        found = f"openapi: {version}" if version else "no `openapi:` version"
        result.problems.append(f"{path}:1: not an OpenAPI 3.0/3.1 document ({found})")
        result.fatal = True
        return result
    spec = _Spec(path, doc)
    host, base = _server(data)
    operations = [
        (route, method, item)
        for route, item in (data.get("paths") or {}).items()
        if isinstance(item, dict)
        for method in item
        if method in METHODS and isinstance(item[method], dict)
    ]
    for i, (route, method, item) in enumerate(operations):
        if progress is not None:
            progress(i + 1, len(operations))
        result.mocks.append(_operation(spec, route, method, item, host, base))
    result.problems.extend(spec.problems)
    return result


def _server(data: dict[str, Any]) -> tuple[str | None, str]:
    """The first server's host (None when relative) and base path, variables at defaults."""
    servers = data.get("servers") or [{"url": "/"}]
    server: dict[str, Any] = servers[0] if isinstance(servers[0], dict) else {}
    url = str(server.get("url", "/"))
    variables: dict[str, Any] = server.get("variables") or {}
    for name, var in variables.items():
        url = url.replace(f"{{{name}}}", str(var.get("default", "")))
    parts = urlsplit(url)
    return (parts.netloc or None), parts.path.rstrip("/")


def _operation(
    spec: _Spec, route: str, method: str, item: dict[str, Any], host: str | None, base: str
) -> dict[str, Any]:
    op = item[method]
    place: DocPath = ("paths", route, method)
    name = str(op.get("operationId") or f"{method.upper()} {route}")
    request: dict[str, Any] = {"method": method.upper()}
    if host:
        request["host"] = host
    request["path"] = _path_template(spec, base + route, ("paths", route))
    query = _required_query(spec, [*item.get("parameters", []), *op.get("parameters", [])], place)
    if query:
        request["query"] = query
    status, response, response_place = _pick_response(spec, op, place)
    mock: dict[str, Any] = {"name": name, "request": request}
    answer: dict[str, Any] = {"status": 200 if status in ("default", None) else int(status)}
    openapi: dict[str, Any] = {"method": method.upper(), "path": route}
    if op.get("operationId"):
        openapi = {"operation_id": str(op["operationId"]), **openapi}
    if status is not None:
        openapi["status"] = str(status)
    if response is not None:
        media = _pick_media(response.get("content"))
        if media is not None:
            content_type, media_obj = media
            media_place = (*response_place, "content", content_type)
            answer["headers"] = {"Content-Type": content_type}
            openapi["content_type"] = content_type
            schema = None
            if "schema" in media_obj:
                schema = _Bundler(spec).bundle(media_obj["schema"], (*media_place, "schema"))
                openapi["response_schema"] = schema
            body = _body(spec, media_obj, schema, media_place, f"{method} {route}")
            if body is not None and not isinstance(body, str) and not _is_json(content_type):
                spec.problem(
                    media_place,
                    f"only JSON answers are made from a schema; {content_type} has no text "
                    "example, so the mock has no body",
                )
                body = None
            if isinstance(body, str) and _is_json(content_type):
                body = json.dumps(body)  # a JSON string, quoted: a plain string is sent as text
            if body is not None:
                answer["body"] = body
    request_schema = _request_schema(spec, op, place)
    if request_schema is not None:
        openapi["request_schema"] = request_schema
    openapi["source"] = spec.path.name
    mock["response"] = literal_response(answer)  # the document's text, never a template
    mock["openapi"] = openapi
    return mock


def _path_template(spec: _Spec, path: str, place: DocPath) -> str:
    """OpenAPI's `/pets/{petId}` is MockBox's template already; a parameter that is only part of
    a segment (`/files/{name}.json`) becomes the whole segment, and that is reported."""
    segments = []
    for seg in path.split("/"):
        params = re.findall(r"\{([^}]*)\}", seg)
        if not params:
            segments.append(seg)
            continue
        clean = re.sub(r"[^A-Za-z0-9_]", "_", params[0]) or "param"
        clean = clean if not clean[0].isdigit() else f"p{clean}"
        if seg != f"{{{params[0]}}}":
            spec.problem(place, f"segment {seg!r} matches as the whole-segment {{{clean}}}")
        segments.append(f"{{{clean}}}")
    return "/".join(segments) or "/"


def _required_query(spec: _Spec, params: list[Any], place: DocPath) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, raw in enumerate(params):
        found = spec.deref(raw, (*place, "parameters", i))
        if found is None:
            continue
        param = found[0]
        if isinstance(param, dict) and param.get("in") == "query" and param.get("required"):
            out[str(param["name"])] = {"present": True}
    return out


def _pick_response(
    spec: _Spec, op: dict[str, Any], place: DocPath
) -> tuple[str | None, dict[str, Any] | None, DocPath]:
    """The lowest 2xx response, else `default`, else the first one declared."""
    responses = op.get("responses") or {}
    codes = [str(c) for c in responses]
    ok = sorted(c for c in codes if c.startswith("2"))
    status = ok[0] if ok else "default" if "default" in codes else codes[0] if codes else None
    if status is None:
        return None, None, place
    key = next(c for c in responses if str(c) == status)
    found = spec.deref(responses[key], (*place, "responses", key))
    if found is None or not isinstance(found[0], dict):
        return status, None, place
    return status, found[0], found[1]


def _pick_media(content: Any) -> tuple[str, dict[str, Any]] | None:
    """JSON if offered, else the first media type."""
    if not isinstance(content, dict) or not content:
        return None
    for mt, obj in content.items():
        if _is_json(mt) and isinstance(obj, dict):
            return str(mt), obj
    mt, obj = next(iter(content.items()))
    return (str(mt), obj) if isinstance(obj, dict) else None


def _is_json(media_type: str) -> bool:
    mt = media_type.partition(";")[0].strip().lower()
    return mt == "application/json" or mt.endswith("+json")


def _body(spec: _Spec, media: dict[str, Any], schema: Any, place: DocPath, seed_key: str) -> Any:
    if "example" in media:
        return media["example"]
    for name, ex in (media.get("examples") or {}).items():
        found = spec.deref(ex, (*place, "examples", name))
        if found is not None and isinstance(found[0], dict) and "value" in found[0]:
            return found[0]["value"]
    if not isinstance(schema, dict):
        return None
    if "example" in schema:
        return schema["example"]
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        return schema["examples"][0]
    return generate(schema, seed_key, lambda message: spec.problem((*place, "schema"), message))


def generate(schema: dict[str, Any], seed_key: str, report: Callable[[str], None]) -> Any:
    """A body valid against `schema`, the same every time for the same `seed_key`; None (and a
    report) when jsf cannot produce a valid one."""
    from jsf import JSF  # imported on use: it loads pydantic, which is slow to import

    validator = jsonschema.Draft202012Validator(schema)
    for attempt in range(_SEEDS):
        seed = int.from_bytes(hashlib.blake2b(f"{seed_key}#{attempt}".encode()).digest()[:8])
        state = random.getstate()
        try:
            random.seed(seed)
            Faker.seed(seed)
            value = JSF(_prefer_examples(schema)).generate()
        except Exception as e:  # jsf raises many kinds; one operation must not stop the rest
            report(f"cannot generate a body from the schema: {type(e).__name__}: {e}")
            return None
        finally:
            random.setstate(state)
        if validator.is_valid(value):
            return value
    first = next(iter(validator.iter_errors(value)), None)
    report(f"no generated body fits the schema ({first.message if first else 'invalid'})")
    return None


# jsf draws dates relative to today; fixed ones keep a document's mocks the same every day.
_FIXED_FORMATS = {"date-time": "2024-05-17T09:30:00Z", "date": "2024-05-17", "time": "09:30:00Z"}


def _prefer_examples(node: Any) -> Any:
    """The schema for generation: a property's own valid `example` is used as its only value,
    so generated answers look like the API's documentation; dates are fixed."""
    if isinstance(node, list):
        return [_prefer_examples(v) for v in node]
    if not isinstance(node, dict):
        return node
    if node.get("format") in _FIXED_FORMATS and "example" not in node:
        node = {**node, "example": _FIXED_FORMATS[node["format"]]}
    if "example" in node and "$ref" not in node:
        try:
            if jsonschema.Draft202012Validator(node).is_valid(node["example"]):
                return {"enum": [node["example"]]}
        except (jsonschema.exceptions.SchemaError, Unresolvable):
            pass
    return {k: v if k in _NOT_SCHEMA_KEYS else _prefer_examples(v) for k, v in node.items()}


def _request_schema(spec: _Spec, op: dict[str, Any], place: DocPath) -> Any:
    if "requestBody" not in op:
        return None
    found = spec.deref(op["requestBody"], (*place, "requestBody"))
    if found is None or not isinstance(found[0], dict):
        return None
    media = _pick_media(found[0].get("content"))
    if media is None or "schema" not in media[1]:
        return None
    where = (*found[1], "content", media[0], "schema")
    return _Bundler(spec).bundle(media[1]["schema"], where)
