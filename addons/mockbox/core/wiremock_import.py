"""`mockbox import wiremock DIR`: WireMock stub mappings (JSON, as WireMock documents them) become
mocks. A mapping with a request matcher MockBox cannot express is not imported, because without
it the mock would answer requests it should not; response features it cannot express are left
out. Either way each one is listed with its file, line and place, never dropped silently."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .mockwriter import ImportResult, body_file_name, literal_response
from .yamlsrc import DocPath, SourcedDocument, YamlSyntaxError, load_sourced

_FAULTS = {"CONNECTION_RESET_BY_PEER": "connection_reset", "EMPTY_RESPONSE": "empty_reply"}
_IGNORED = frozenset({"id", "uuid", "metadata", "persistent", "insertionIndex"})
_DEFAULT_PRIORITY = 5  # WireMock's; 1 is the highest there, while higher wins in MockBox


class Unmappable(ValueError):
    """A request matcher MockBox cannot express: the mapping is not imported."""

    def __init__(self, place: DocPath, message: str) -> None:
        super().__init__(message)
        self.place = place


class _Mapping:
    """One stub mapping being converted, with the notes about what was left out."""

    def __init__(
        self, doc: SourcedDocument, place: DocPath, raw: dict[str, Any], files_dir: Path
    ) -> None:
        self.doc, self.place, self.raw, self.files_dir = doc, place, raw, files_dir
        self.notes: list[tuple[DocPath, str]] = []
        self.files: dict[str, bytes] = {}

    def note(self, where: DocPath, message: str) -> None:
        self.notes.append(((*self.place, *where), message))

    def convert(self, stem: str) -> dict[str, Any]:
        raw = self.raw
        request = self._request(raw.get("request") or {})
        mock: dict[str, Any] = {}
        name = raw.get("name") or f"{request['method']} {request['path']}"
        mock["name"] = str(name)
        if "priority" in raw:
            mock["priority"] = _DEFAULT_PRIORITY - int(raw["priority"])
        mock["request"] = request
        mock["response"] = self._response(raw.get("response") or {}, stem)
        state = raw.get("requiredScenarioState")
        if state not in (None, "Started"):
            raise Unmappable(
                ("requiredScenarioState",),
                f"scenario {raw.get('scenarioName')!r} state {state!r}: scenarios are not "
                "supported, and only a scenario's starting stubs import",
            )
        for key in raw:
            if key in ("scenarioName", "newScenarioState") and state is None:
                self.note((key,), "scenario state changes are not imported")
            elif key not in (*_IGNORED, "name", "priority", "request", "response") and key not in (
                "scenarioName",
                "newScenarioState",
                "requiredScenarioState",
            ):
                self.note((key,), f"{key!r} is not supported; left out")
        return mock

    # --- request ---------------------------------------------------------------------------

    def _request(self, req: dict[str, Any]) -> dict[str, Any]:
        method = str(req.get("method", "ANY")).upper()
        out: dict[str, Any] = {"method": "*" if method == "ANY" else method}
        query: dict[str, Any] = {}
        if "url" in req:
            parts = urlsplit(str(req["url"]))
            out["path"] = parts.path or "/"
            query.update(parse_qsl(parts.query, keep_blank_values=True))
        elif "urlPath" in req:
            out["path"] = str(req["urlPath"])
        elif "urlPathTemplate" in req:
            out["path"] = self._template(str(req["urlPathTemplate"]), req.get("pathParameters"))
        elif "urlPathPattern" in req or "urlPattern" in req:
            key = "urlPathPattern" if "urlPathPattern" in req else "urlPattern"
            out["path"] = self._pattern(str(req[key]), ("request", key))
        else:
            out["path"] = "/{any*}"  # WireMock: no URL matcher matches every URL
        for name, spec in (req.get("queryParameters") or {}).items():
            query[str(name)] = self._value(spec, ("request", "queryParameters", name))
        if query:
            out["query"] = query
        headers: dict[str, Any] = {}
        for name, spec in (req.get("headers") or {}).items():
            headers[str(name)] = self._value(spec, ("request", "headers", name))
        if "basicAuthCredentials" in req:
            creds = req["basicAuthCredentials"]
            token = base64.b64encode(f"{creds['username']}:{creds['password']}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        cookies = req.get("cookies") or {}
        if cookies:
            headers["Cookie"] = self._cookies(cookies)
        if headers:
            out["headers"] = headers
        body = [
            self._body(spec, ("request", "bodyPatterns", i))
            for i, spec in enumerate(req.get("bodyPatterns") or [])
        ]
        if body:
            out["body"] = body[0] if len(body) == 1 else body
        known = {
            "method", "url", "urlPath", "urlPathTemplate", "urlPathPattern", "urlPattern",
            "pathParameters", "queryParameters", "headers", "basicAuthCredentials", "cookies",
            "bodyPatterns",
        }  # fmt: skip
        for key in req:
            if key not in known:
                raise Unmappable(("request", key), f"request matcher {key!r} is not supported")
        return out

    def _template(self, template: str, params: Any) -> str:
        for name, spec in (params or {}).items():
            if isinstance(spec, dict) and set(spec) == {"equalTo"}:
                template = template.replace(f"{{{name}}}", str(spec["equalTo"]))
            else:
                raise Unmappable(
                    ("request", "pathParameters", name),
                    "only equalTo path parameters can be imported (MockBox's {name} matches "
                    "any segment)",
                )
        return template

    def _pattern(self, pattern: str, where: DocPath) -> str:
        """A URL regex as a path template: literal segments stay, each other segment becomes a
        `{pN}` parameter (its regex is not kept: noted), a trailing `.*` a catch-all."""
        body = pattern.removeprefix("^").removesuffix("$")
        if "\\?" in body or "|" in body:  # a query, or alternatives: no single template
            raise Unmappable(where, f"URL pattern {pattern!r} cannot be written as a path")
        segments = body.split("/")
        out: list[str] = []
        loose: list[str] = []
        last = len(segments) - 1
        for i, seg in enumerate(segments):
            unescaped = re.sub(r"\\(.)", r"\1", seg)
            if re.escape(unescaped) == seg or not re.search(r"[.^$*+?()\[\]{}|\\]", seg):
                out.append(unescaped)  # a literal segment, perhaps escaped
            elif i == last and seg in (".*", ".+"):
                out.append("{rest*}")
            elif re.search(r"(?<!\\)\.[*+]", seg):
                raise Unmappable(where, f"URL pattern {pattern!r} spans path segments")
            else:
                out.append(f"{{p{len(loose) + 1}}}")
                loose.append(seg)
        if loose:
            self.note(
                where,
                f"imported as {'/'.join(out)!r}: the segment pattern(s) {', '.join(loose)} "
                "now match any segment",
            )
        return "/".join(out) or "/"

    def _value(self, spec: Any, where: DocPath) -> Any:
        if not isinstance(spec, dict):
            raise Unmappable(where, f"matcher {json.dumps(spec)} is not an object")
        ci = bool(spec.get("caseInsensitive"))
        kinds = [k for k in spec if k != "caseInsensitive"]
        if len(kinds) != 1:
            raise Unmappable(where, f"matcher with {kinds or 'no'} operators is not supported")
        kind, arg = kinds[0], spec[kinds[0]]
        if kind == "equalTo":
            return {"regex": f"(?i)^{re.escape(str(arg))}$"} if ci else {"equals": str(arg)}
        if kind == "contains" and not ci:
            return {"contains": str(arg)}
        if kind == "matches":
            return {"regex": f"^(?:{arg})$"}
        if kind == "doesNotMatch":
            return {"regex": f"^(?!(?:{arg})$)"}
        if kind == "absent":
            return {"present": not bool(arg)}
        raise Unmappable((*where, kind), f"unknown or unsupported matcher {kind!r}")

    def _cookies(self, cookies: dict[str, Any]) -> dict[str, str]:
        parts = []
        for name, spec in cookies.items():
            if not (isinstance(spec, dict) and set(spec) == {"equalTo"}):
                raise Unmappable(("request", "cookies", name), "only equalTo cookies import")
            parts.append(
                f"(?=.*(?:^|;\\s*){re.escape(str(name))}={re.escape(spec['equalTo'])}(?:;|$))"
            )
        return {"regex": "^" + "".join(parts)}

    def _body(self, spec: Any, where: DocPath) -> dict[str, Any]:
        if not isinstance(spec, dict):
            raise Unmappable(where, "a body pattern must be an object")
        if "equalToJson" in spec:
            value = spec["equalToJson"]
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError as e:
                    raise Unmappable((*where, "equalToJson"), f"not JSON: {e}") from e
            if spec.get("ignoreArrayOrder"):
                self.note((*where, "ignoreArrayOrder"), "array order now matters")
            key = "json_includes" if spec.get("ignoreExtraElements") else "json"
            if key == "json_includes" and not isinstance(value, (dict, list)):
                key = "json"
            return {key: value}
        if "matchesJsonPath" in spec:
            arg = spec["matchesJsonPath"]
            if isinstance(arg, str):
                return {"jsonpath": arg}
            if isinstance(arg, dict) and "expression" in arg:
                extra = {k: v for k, v in arg.items() if k != "expression"}
                if not extra:
                    return {"jsonpath": arg["expression"]}
                test = self._value(extra, (*where, "matchesJsonPath"))
                if "present" in test:
                    raise Unmappable((*where, "matchesJsonPath"), "absent is not supported here")
                return {"jsonpath": arg["expression"], **test}
            raise Unmappable((*where, "matchesJsonPath"), "matchesJsonPath needs an expression")
        for kind, mapped in (("equalTo", "equals"), ("contains", "contains")):
            if kind in spec and len(spec) == 1:
                return {mapped: str(spec[kind])}
        if "matches" in spec and len(spec) == 1:
            return {"regex": f"^(?:{spec['matches']})$"}
        kind = next(iter(spec), "?")
        raise Unmappable((*where, kind), f"unknown or unsupported body matcher {kind!r}")

    # --- response -------------------------------------------------------------------------

    def _response(self, resp: dict[str, Any], stem: str) -> dict[str, Any]:
        out: dict[str, Any] = {"status": int(resp.get("status", 200))}
        headers: dict[str, str] = {}
        for name, value in (resp.get("headers") or {}).items():
            if isinstance(value, list):
                if len(value) > 1:
                    self.note(("response", "headers", name), "repeated values joined with ', '")
                value = ", ".join(str(v) for v in value)
            headers[str(name)] = str(value)
        if headers:
            out["headers"] = headers
        if "jsonBody" in resp:
            body = resp["jsonBody"]
            out["body"] = body if isinstance(body, (dict, list)) else json.dumps(body)
        elif "body" in resp:
            out["body"] = str(resp["body"])
        elif "base64Body" in resp:
            try:
                data = base64.b64decode(str(resp["base64Body"]), validate=True)
            except (binascii.Error, ValueError) as e:
                raise Unmappable(("response", "base64Body"), f"not base64: {e}") from e
            out["body_file"] = self._file(stem, f"body-{len(self.files) + 1}.bin", data)
        elif "bodyFileName" in resp:
            out["body_file"] = self._body_file(stem, str(resp["bodyFileName"]))
        if "transformers" in resp:
            self.note(("response", "transformers"), "WireMock templating is not converted; "
                      "the body is served as written")  # fmt: skip
        if "fixedDelayMilliseconds" in resp:
            out["delay_ms"] = int(resp["fixedDelayMilliseconds"])
        dist = resp.get("delayDistribution")
        if isinstance(dist, dict) and dist.get("type") == "uniform":
            out["delay_ms"] = {"min": int(dist["lower"]), "max": int(dist["upper"])}
        elif dist is not None:
            self.note(("response", "delayDistribution"), "only uniform delays are imported")
        if "fault" in resp:
            fault = _FAULTS.get(str(resp["fault"]))
            if fault is None:
                raise Unmappable(("response", "fault"), f"fault {resp['fault']!r} is not supported")
            out["fault"] = fault
        known = {
            "status", "headers", "body", "jsonBody", "base64Body", "bodyFileName",
            "transformers", "transformerParameters", "fixedDelayMilliseconds",
            "delayDistribution", "fault",
        }  # fmt: skip
        for key in resp:
            if key == "proxyBaseUrl":
                raise Unmappable(("response", key), "proxying stubs are not supported")
            if key not in known:
                self.note(("response", key), f"{key!r} is not supported; left out")
        return literal_response(out)

    def _body_file(self, stem: str, name: str) -> str:
        source = (self.files_dir / name).resolve()
        if not source.is_relative_to(self.files_dir.resolve()):
            raise Unmappable(("response", "bodyFileName"), f"{name!r} is outside __files")
        try:
            data = source.read_bytes()
        except OSError as e:
            raise Unmappable(
                ("response", "bodyFileName"), f"{name!r}: {e.strerror or e} in {self.files_dir}"
            ) from e
        return self._file(stem, PurePosixPath(name).as_posix(), data)

    def _file(self, stem: str, name: str, data: bytes) -> str:
        target = body_file_name(f"{stem}.files", name)
        self.files[target] = data
        return target


def _mapping_files(folder: Path) -> list[Path]:
    root = folder / "mappings" if (folder / "mappings").is_dir() else folder
    return sorted(p for p in root.rglob("*.json") if p.is_file())


def import_wiremock(
    folder: Path, progress: Callable[[int, int], None] | None = None
) -> ImportResult:
    result = ImportResult(folder.resolve())
    if not folder.is_dir():
        result.problems.append(f"{folder}: not a folder of WireMock mappings")
        result.fatal = True
        return result
    files = _mapping_files(folder)
    if not files:
        result.problems.append(f"{folder}: no *.json mapping files (in it, or in mappings/)")
        result.fatal = True
        return result
    files_dir = folder / "__files"
    stem = result.source.stem
    for n, path in enumerate(files):
        if progress is not None:
            progress(n + 1, len(files))
        try:
            doc = load_sourced(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as e:
            result.problems.append(f"{path}: cannot read: {e}")
            continue
        except YamlSyntaxError as e:
            result.problems.append(f"{path}:{e.line}: not valid JSON: {e}")
            continue
        for place, raw in _stubs(doc):
            _convert(result, path, doc, place, raw, files_dir, stem)
    return result


def _stubs(doc: SourcedDocument) -> list[tuple[DocPath, Any]]:
    data = doc.data
    if isinstance(data, dict) and isinstance(data.get("mappings"), list):
        return [(("mappings", i), m) for i, m in enumerate(data["mappings"])]
    return [((), data)]


def _convert(
    result: ImportResult,
    path: Path,
    doc: SourcedDocument,
    place: DocPath,
    raw: Any,
    files_dir: Path,
    stem: str,
) -> None:
    def where(p: DocPath) -> str:
        return f"{path}:{doc.line_of(p)}: {'.'.join(str(x) for x in p) or '(mapping)'}"

    if not isinstance(raw, dict) or not isinstance(raw.get("request"), dict):
        result.problems.append(f"{where(place)}: not a stub mapping (no `request` object)")
        return
    mapping = _Mapping(doc, place, raw, files_dir)
    try:
        mock = mapping.convert(stem)
    except Unmappable as e:
        result.problems.append(f"{where((*place, *e.place))}: {e}; mapping not imported")
        return
    except (KeyError, TypeError, ValueError) as e:
        result.problems.append(f"{where(place)}: malformed mapping ({e}); not imported")
        return
    result.mocks.append(mock)
    result.files.update(mapping.files)
    for p, message in mapping.notes:
        result.problems.append(f"{where(p)}: {message} (imported without it)")
