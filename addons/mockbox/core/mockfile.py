"""Reading one mock file: YAML → schema check → compiled mocks, or problems with file:line."""

from __future__ import annotations

import hashlib
import json
import mimetypes
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from .matchers import BodyMatcher, MatcherError, ValueMatcher
from .model import ANY_METHOD, Delay, Fault, HostPattern, Mock, ResponseSpec
from .operation import OperationSchema, OperationSchemaError
from .pathtemplate import PathTemplate, PathTemplateError
from .ratelimit import LimitRule, RateLimitConfigError, parse_rule
from .render import encode_body
from .safefile import DEFAULT_LIMITS, FileLimits, FileRefused, read_inside, resolve_inside
from .templating import TemplateEngine, TemplateError
from .yamlsrc import DocPath, SourcedDocument, YamlSyntaxError, load_sourced, shown

MOCK_FILE_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class Problem:
    file: Path
    line: int
    message: str
    mock: str | None = None

    def __str__(self) -> str:
        where = f" mock {self.mock!r}:" if self.mock else ""
        return f"{self.file}:{self.line}:{where} {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "file": str(self.file),
            "line": self.line,
            "mock": self.mock,
            "message": self.message,
        }


@dataclass(slots=True)
class LoadedFile:
    path: Path
    mocks: list[Mock] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    dependencies: set[Path] = field(default_factory=set)  # body files read while loading
    digest: str = ""  # sha256 of the file and its body files: the same content, the same digest
    size: int = 0  # bytes read: the file and each of its body files once


@cache
def mock_file_schema() -> dict[str, Any]:
    text = resources.files("mockbox").joinpath("schema/mock.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(mock_file_schema())


def load_mock_file(
    path: Path, root: Path, engine: TemplateEngine, limits: FileLimits = DEFAULT_LIMITS
) -> LoadedFile:
    """Load `path`, a regular file inside `root` within `limits`; every problem found is
    reported, and any problem means no mocks."""
    try:
        data = read_inside(root.resolve(), path, limits.max_file_bytes, "mock_files.max_file_bytes")
        text = data.decode("utf-8")
    except FileRefused as e:
        return LoadedFile(path, problems=[Problem(path, 1, f"the file {e}")])
    except UnicodeDecodeError as e:
        message = f"the file is not UTF-8 text (byte {e.start + 1} is not)"
        return LoadedFile(path, problems=[Problem(path, 1, message)])
    return load_mock_text(path, text, root, engine, limits)


def load_mock_text(
    path: Path,
    text: str,
    root: Path,
    engine: TemplateEngine,
    limits: FileLimits = DEFAULT_LIMITS,
) -> LoadedFile:
    """Like load_mock_file, for the text `path` would hold (the editor checks before writing)."""
    out = LoadedFile(path)
    raw_text = text.encode("utf-8", "surrogatepass")
    if len(raw_text) > limits.max_total_bytes:
        out.problems.append(Problem(path, 1, f"the file {_over_total(limits)}"))
        return out
    try:
        doc = load_sourced(text)
    except YamlSyntaxError as e:
        out.problems.append(Problem(path, e.line, f"invalid YAML: {e}"))
        return out
    if doc.data is None:
        return out  # an empty file holds no mocks; that is not an error
    out.problems.extend(_schema_problems(path, doc))
    if out.problems:
        return out
    bodies = _BodyFiles(root.resolve(), limits, limits.max_total_bytes - len(raw_text))
    for i, raw in enumerate(doc.data["mocks"]):
        builder = _MockBuilder(path, root, engine, doc, i, raw, bodies)
        mock = builder.build()
        out.problems.extend(builder.problems)
        if mock is not None:
            out.mocks.append(mock)
    if out.problems:
        out.mocks.clear()
    out.dependencies = set(bodies.read)
    content = hashlib.sha256(raw_text)
    for dep in sorted(bodies.read):
        content.update(bodies.read[dep] or b"")
    out.digest = content.hexdigest()
    out.size = len(raw_text) + sum(len(b or b"") for b in bodies.read.values())
    return out


def _over_total(limits: FileLimits) -> str:
    return (
        "would take the mocks folder past mock_files.max_total_bytes "
        f"({limits.max_total_bytes:,} bytes in all); not read"
    )


@dataclass(slots=True)
class _BodyFiles:
    """The body files one mock file reads: each once, every one within the size limits."""

    root: Path
    limits: FileLimits
    budget: int  # what is left of mock_files.max_total_bytes
    read: dict[Path, bytes | None] = field(default_factory=dict)  # None: refused

    def get(self, path: Path) -> bytes:
        target = resolve_inside(self.root, path)
        if target in self.read:
            data = self.read[target]
            if data is None:
                raise FileRefused("cannot be read (see the first mock that names it)")
            return data
        self.read[target] = None
        if self.budget < self.limits.max_body_file_bytes:
            limit, setting = max(self.budget, 0), "what is left of mock_files.max_total_bytes"
        else:
            limit, setting = self.limits.max_body_file_bytes, "mock_files.max_body_file_bytes"
        data = read_inside(self.root, target, limit, setting)
        self.read[target] = data
        self.budget -= len(data)
        return data


@dataclass(slots=True)
class CheckedMock:
    """One mock given as YAML text on its own (the editor's buffer), checked in place."""

    data: Any
    problems: list[Problem]


def check_mock_text(
    text: str,
    path: Path,
    root: Path,
    engine: TemplateEngine,
    limits: FileLimits = DEFAULT_LIMITS,
) -> CheckedMock:
    """Check one mock mapping as if it stood in the file `path`, with the same schema and
    compiler as file loading; problem lines count from the first line of `text`."""
    try:
        doc = load_sourced(text)
    except YamlSyntaxError as e:
        return CheckedMock(None, [Problem(path, e.line, f"invalid YAML: {e}")])
    if not isinstance(doc.data, dict):
        return CheckedMock(
            doc.data, [Problem(path, 1, "a mock is a mapping with request: and response:")]
        )
    bodies = _BodyFiles(root.resolve(), limits, limits.max_total_bytes)
    # Seen as entry 0 of a `mocks:` list, so the file's checks apply unchanged.
    wrapped = SourcedDocument(
        {"mocks": [doc.data]},
        {(): 1, ("mocks",): 1, **{("mocks", 0, *k): v for k, v in doc.lines.items()}},
    )
    problems = [_unwrapped(p) for p in _schema_problems(path, wrapped)]
    if not problems:
        builder = _MockBuilder(path, root, engine, wrapped, 0, doc.data, bodies)
        builder.build()
        problems = [_unwrapped(p) for p in builder.problems]
    return CheckedMock(doc.data, problems)


def _unwrapped(problem: Problem) -> Problem:
    message = problem.message.removeprefix("mocks.0.").removeprefix("mocks.0: ")
    return Problem(problem.file, problem.line, message, problem.mock)


def _schema_problems(path: Path, doc: SourcedDocument) -> Iterator[Problem]:
    for error in _validator().iter_errors(doc.data):
        err = best_match([error]) if error.context else error
        where: DocPath = tuple(err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            known = err.schema.get("properties", {}) if isinstance(err.schema, dict) else {}
            for key in (k for k in err.instance if k not in known):
                line = doc.line_of((*where, key))
                message = f"unknown key {shown(key)} (expected one of: {', '.join(known)})"
                yield Problem(path, line, f"{_location(where)}: {message}", _mock_label(doc, where))
            continue
        yield Problem(path, doc.line_of(where), _describe(err), _mock_label(doc, where))


def _location(where: DocPath) -> str:
    return ".".join(str(p) for p in where) or "file"


def _describe(err: ValidationError) -> str:
    """The schema's complaint, quoting no more of the file than `shown` allows: jsonschema's own
    messages start with the whole offending value (a body, or a secret file read as one
    string), and the top level is never quoted at all (a file that is not a mapping)."""
    location = _location(tuple(err.absolute_path))
    message = err.message
    if err.validator == "oneOf" and len(err.absolute_path) == 2:
        message = "a mock has either `response` or `responses` (a sequence), exactly one"
    elif err.validator == "oneOf":
        message = f"{shown(err.instance)} is not a valid value here"
    elif err.validator == "not" and err.absolute_path and err.absolute_path[-1] == "response":
        message = "a response has either `body` or `body_file`, not both"
    elif not err.absolute_path and err.validator == "type":
        message = "a mock file is a mapping with a `mocks:` list"
    else:
        quoted = repr(err.instance)
        if message.startswith(quoted):
            message = shown(err.instance) + message[len(quoted) :]
    return f"{location}: {message}"


def _mock_label(doc: SourcedDocument, where: DocPath) -> str | None:
    if len(where) < 2 or where[0] != "mocks" or not isinstance(where[1], int):
        return None
    try:
        raw = doc.data["mocks"][where[1]]
    except (IndexError, KeyError, TypeError):
        return None
    return _default_name(raw, where[1])


def _default_name(raw: Any, index: int) -> str:
    if isinstance(raw, dict):
        if isinstance(raw.get("name"), str):
            return str(raw["name"])
        req = raw.get("request")
        if isinstance(req, dict) and isinstance(req.get("path"), str):
            method = req.get("method", ANY_METHOD)
            # str(m): this names mocks in schema problems, so the list may hold anything
            method = ",".join(map(str, method)) if isinstance(method, list) else str(method)
            return f"{method.upper()} {req['path']}"
    return f"mocks[{index}]"


class _MockBuilder:
    """Turns one schema-valid mock mapping into a Mock, collecting semantic problems."""

    def __init__(
        self,
        path: Path,
        root: Path,
        engine: TemplateEngine,
        doc: SourcedDocument,
        index: int,
        raw: dict[str, Any],
        bodies: _BodyFiles,
    ) -> None:
        self.path, self.root, self.engine, self.doc = path, root, engine, doc
        self.index, self.raw, self.bodies = index, raw, bodies
        self.name = _default_name(raw, index)
        self.problems: list[Problem] = []

    def problem(self, where: DocPath, message: str) -> None:
        line = self.doc.line_of(("mocks", self.index, *where))
        self.problems.append(Problem(self.path, line, message, self.name))

    def build(self) -> Mock | None:
        req = self.raw["request"]
        try:
            template = PathTemplate.parse(req["path"])
        except PathTemplateError as e:
            self.problem(("request", "path"), str(e))
            return None
        methods = req.get("method", ANY_METHOD)
        methods = [methods] if isinstance(methods, str) else methods
        query = self._value_matchers(req.get("query", {}), "query")
        headers = self._value_matchers(req.get("headers", {}), "headers")
        body_specs = req.get("body")
        body_list = (
            body_specs
            if isinstance(body_specs, list)
            else []
            if body_specs is None
            else [body_specs]
        )
        body: list[BodyMatcher] = []
        for i, spec in enumerate(body_list):
            try:
                body.append(BodyMatcher.compile(spec))
            except MatcherError as e:
                self.problem(
                    ("request", "body", i) if isinstance(body_specs, list) else ("request", "body"),
                    str(e),
                )
        if "responses" in self.raw:
            sequence = [
                self._response(spec, ("responses", i))
                for i, spec in enumerate(self.raw["responses"])
            ]
        else:
            sequence = [self._response(self.raw["response"], ("response",))]
        openapi = self._openapi(self.raw["openapi"]) if "openapi" in self.raw else None
        rate_limit = self._rate_limit()
        if self.problems or any(r is None for r in sequence):
            return None
        responses = tuple(r for r in sequence if r is not None)
        rel = self.path.relative_to(self.root) if self.path.is_relative_to(self.root) else self.path
        return Mock(
            id=f"{rel.as_posix()}#{self.name}",
            name=self.name,
            file=self.path,
            line=self.doc.line_of(("mocks", self.index)),
            methods=frozenset(m.upper() for m in methods),
            host=HostPattern.parse(req["host"]) if "host" in req else None,
            path=template,
            query=query,
            headers=tuple((k.lower(), v) for k, v in headers),
            body=tuple(body),
            priority=int(self.raw.get("priority", 0)),
            response=responses[0],
            raw=self.raw,
            sequence=responses if "responses" in self.raw else (),
            openapi=openapi,
            rate_limit=rate_limit,
        )

    def _openapi(self, raw: dict[str, Any]) -> OperationSchema | None:
        try:
            return OperationSchema.from_raw(raw)
        except OperationSchemaError as e:
            self.problem(("openapi", e.key), str(e))
            return None

    def _rate_limit(self) -> LimitRule | None:
        if "rate_limit" not in self.raw:
            return None
        try:
            return parse_rule(self.raw["rate_limit"], "rate_limit")
        except RateLimitConfigError as e:
            self.problem(("rate_limit",), str(e))
            return None

    def _value_matchers(
        self, specs: dict[str, Any], where: str
    ) -> tuple[tuple[str, ValueMatcher], ...]:
        out = []
        for name, spec in specs.items():
            try:
                out.append((str(name), ValueMatcher.compile(spec)))
            except MatcherError as e:
                self.problem(("request", where, name), str(e))
        return tuple(out)

    def _compile(self, value: Any, where: DocPath) -> Any:
        try:
            return self.engine.compile(value)
        except TemplateError as e:
            self.problem((*where, *e.where), str(e))
            return None

    def _response(self, spec: dict[str, Any], where: DocPath) -> ResponseSpec | None:
        headers = []
        for name, value in spec.get("headers", {}).items():
            if "\n" in str(name) or "\r" in str(name) or "\n" in str(value) or "\r" in str(value):
                self.problem(
                    (*where, "headers", name), "header names and values cannot hold newlines"
                )
                continue
            compiled = self._compile(
                str(value) if not isinstance(value, str) else value, (*where, "headers", name)
            )
            if compiled is not None:
                headers.append((str(name), compiled))
        body = None
        body_bytes = None
        content_type = None
        if "body" in spec:
            body = self._compile(spec["body"], (*where, "body"))
            if body is not None and body.static:
                body, body_bytes = None, encode_body(spec["body"])
            content_type = (
                "application/json"
                if not isinstance(spec["body"], str)
                else "text/plain; charset=utf-8"
            )
        elif "body_file" in spec:
            body_bytes = self._body_file(spec["body_file"], (*where, "body_file"))
            guessed, _ = mimetypes.guess_type(spec["body_file"])
            content_type = guessed or "application/octet-stream"
        fault = self._fault(spec["fault"], (*where, "fault")) if "fault" in spec else None
        delay = spec.get("delay_ms")
        delay_spec: Delay | None
        if isinstance(delay, dict):
            if delay["min"] > delay["max"]:
                self.problem((*where, "delay_ms"), "delay_ms: min is greater than max")
            delay_spec = Delay(delay["min"], delay["max"])
        else:
            delay_spec = Delay(delay, delay) if delay else None
        return ResponseSpec(
            status=int(spec.get("status", 200)),
            headers=tuple(headers),
            body=body,
            body_bytes=body_bytes,
            content_type=content_type,
            delay=delay_spec,
            fault=fault,
        )

    def _body_file(self, name: str, where: DocPath) -> bytes | None:
        try:
            return self.bodies.get(self.path.parent / name)
        except FileRefused as e:
            self.problem(where, f"body_file {shown(name, 255)} {e}")  # a path, not a secret
            return None

    def _fault(self, spec: Any, where: DocPath) -> Fault | None:
        if isinstance(spec, str):
            return Fault(spec)  # type: ignore[arg-type]
        probability = float(spec.get("probability", 1.0))
        if "type" in spec:
            return Fault(spec["type"], probability)
        response = self._response(
            {k: v for k, v in spec.items() if k in ("status", "headers", "body")}, where
        )
        return Fault("status", probability, response)
