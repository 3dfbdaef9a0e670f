"""Property tests for redaction (core/redaction.py). The recorder: whatever header or query
parameter carries a secret, in whatever case, however often, and wherever the upstream echoes
it, the files the real writer puts on disk never contain it. Every way out (recordings, HAR
export, the traffic API, prompts): secret-named fields at any depth of JSON, form, header and
query structures never survive, and every other value comes out unchanged."""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mockbox.core.ai_prompt import GenerationRequest, build_prompt
from mockbox.core.library import MockLibrary
from mockbox.core.mockwriter import dump_mocks
from mockbox.core.recording import Exchange, Rules, Session
from mockbox.core.request import Headers, RequestView
from mockbox.core.templating import TemplateEngine
from mockbox.core.traffic import Exchange as TrafficExchange
from mockbox.core.traffic import Message, TrafficLog
from mockbox.har import export_har

from .fuzzing import time_bound  # and the bounded CI profile

REPO = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((REPO / "config" / "mockbox.yaml").read_text())
RECORD, REDACT = CONFIG["record"], CONFIG["redact"]
RULES = Rules.from_config(RECORD, REDACT)
SMALL_INLINE = Rules.from_config({**RECORD, "inline_limit": 64}, REDACT)
# Names the shipped policy must know as secret (examples of every rule, in several spellings).
SECRET_HEADERS = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "apikey",
    "x-auth-token",
    "x-access-token",
    "x-amz-security-token",
    "private-token",
    "x-github-token",
    "x-client-secret",
    "ocp-apim-subscription-key",
]
SECRET_QUERY = [
    "api_key",
    "apikey",
    "api-key",
    "key",
    "token",
    "access_token",
    "auth",
    "signature",
    "sig",
    "client_secret",
    "password",
]

# High-entropy, as real tokens are: no accidental match with the file's own words.
secrets = st.from_regex(r"[A-Za-z0-9_.~+/=-]{16,40}", fullmatch=True)


def any_case(name: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda flips: "".join(
            c.upper() if f else c.lower() for c, f in zip(name, flips, strict=True)
        )
    )


@st.composite
def carrier(draw: st.DrawFn, secret: str) -> tuple[str, str, str]:
    """(where, name, value): a request header, response header or query parameter that the
    configuration says carries a secret."""
    kind = draw(st.sampled_from(["request", "response", "query"]))
    if kind == "query":
        return kind, draw(any_case(draw(st.sampled_from(SECRET_QUERY)))), secret
    name = draw(st.sampled_from(SECRET_HEADERS))
    if name == "set-cookie":
        kind = "response"
        attrs = draw(st.sampled_from(["", "; Path=/", "; HttpOnly; Secure", "; Max-Age=60"]))
        value = f"{draw(st.sampled_from(['sid', 'SESSION', '__Host-id']))}={secret}{attrs}"
    elif name == "cookie":
        kind = "request"
        other = draw(st.sampled_from(["", "theme=dark; ", "a=b;"]))
        value = f"{other}{draw(st.sampled_from(['sid', 'token']))}={secret}"
    elif "authorization" in name:
        value = draw(st.sampled_from(["Bearer ", "Basic ", "Token ", ""])) + secret
    else:
        value = secret
    return kind, draw(any_case(name)), value


ECHOES = [
    "text body",
    "JSON body value",
    "JSON body key",
    "large body",
    "binary body",
    "other response header",
    "path segment",
    "other query value",
    "request text body",
    "request JSON value",
    "request JSON key",
    "response header name",
]


def exchange(
    secret: str,
    carriers: list[tuple[str, str, str]],
    echoes: list[str],
    path_prefix: str = "/api",
) -> Exchange:
    req_headers = [("Host", "api.test"), ("Accept", "*/*")]
    resp_headers = [("Content-Type", "application/json")]
    query = [("page", "1")]
    for kind, name, value in carriers:
        {"request": req_headers, "response": resp_headers, "query": query}[kind].append(
            (name, value)
        )
    path = path_prefix + "/items"
    body: Any = {"ok": True}
    raw_body: bytes | None = None
    request_body = b""
    for echo in echoes:
        if echo == "text body":
            raw_body = f"hello {secret} bye".encode()
        elif echo == "JSON body value":
            body["token"] = secret
        elif echo == "JSON body key":
            body[secret] = {"valid": True}
        elif echo == "large body":
            raw_body = ("x" * 70_000 + secret + "y" * 10).encode()
        elif echo == "binary body":
            raw_body = b"\x00\x01\xff" + secret.encode() + b"\x00"
        elif echo == "other response header":
            resp_headers.append(("X-Echo", f"seen {secret}"))
        elif echo == "response header name":
            resp_headers.append((f"X-{secret}", "1"))
        elif echo == "path segment":
            path += "/" + secret
        elif echo == "other query value":
            query.append(("q", f"a{secret}"))
        elif echo == "request text body":
            request_body = f"user=ann&pass={secret}".encode()
        elif echo == "request JSON value":
            request_body = json.dumps({"password": secret}).encode()
        elif echo == "request JSON key":
            request_body = json.dumps({secret: 1}).encode()
    return Exchange(
        "POST",
        "https",
        "api.test",
        443,
        path,
        tuple(query),
        tuple(req_headers),
        request_body,
        200,
        tuple(resp_headers),
        raw_body if raw_body is not None else json.dumps(body).encode(),
    )


def files_holding(folder: Path, secret: str) -> list[str]:
    raw = secret.encode()
    return [
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and raw in p.read_bytes()
    ]


def secret_and_carriers(min_echoes: int = 0) -> st.SearchStrategy[Any]:
    return secrets.flatmap(
        lambda s: st.tuples(
            st.just(s),
            st.lists(carrier(s), min_size=1, max_size=4),
            st.lists(st.sampled_from(ECHOES), min_size=min_echoes, max_size=4, unique=True),
        )
    )


@given(secret_and_carriers(), st.sampled_from([RULES, SMALL_INLINE]))
def test_a_secret_never_reaches_the_written_files(
    case: tuple[str, list[tuple[str, str, str]], list[str]], rules: Rules
) -> None:
    secret, carriers, echoes = case
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        session = Session(folder, rules)
        session.add(exchange(secret, carriers, echoes))
        session.flush(everything=True)
        assert files_holding(folder, secret) == []
        for text in session.documents().values():
            assert secret not in text


@given(secret_and_carriers(min_echoes=1))
def test_a_secret_learned_later_is_scrubbed_from_files_already_written(
    case: tuple[str, list[tuple[str, str, str]], list[str]],
) -> None:
    """Login answers with a token (echoed somewhere, flushed to disk); later requests carry
    it in Authorization. The earlier files must not keep it."""
    secret, carriers, echoes = case
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        session = Session(folder, SMALL_INLINE)
        session.add(exchange(secret, [], echoes, path_prefix="/login"))
        session.flush()
        session.add(exchange(secret, carriers, [], path_prefix="/me"))
        session.flush()
        assert files_holding(folder, secret) == []


@given(secret_and_carriers())
def test_recorded_files_load_as_mocks(
    case: tuple[str, list[tuple[str, str, str]], list[str]],
) -> None:
    """Redaction must not break the file: what the recorder writes loads without problems."""
    secret, carriers, echoes = case
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        session = Session(folder, SMALL_INLINE)
        session.add(exchange(secret, carriers, echoes))
        session.flush(everything=True)
        library = MockLibrary(folder, TemplateEngine())
        library.refresh()
        assert library.problems == []
        assert len(library.index) == 1


@settings(max_examples=100)  # up to four exchanges and files per example: the slowest here
@given(
    st.lists(secrets, min_size=2, max_size=4, unique=True).flatmap(
        lambda ss: st.tuples(
            st.just(ss),
            st.tuples(*(carrier(s) for s in ss)),
            st.lists(st.sampled_from(ECHOES), min_size=1, max_size=4, unique=True),
        )
    )
)
def test_several_secrets_in_repeated_headers_are_all_scrubbed(
    case: tuple[list[str], tuple[tuple[str, str, str], ...], list[str]],
) -> None:
    """Repeated headers (two Set-Cookie, two Authorization, any case), one secret each, every
    secret echoed: none survives, whichever is longer or found first."""
    all_secrets, carriers, echoes = case
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        session = Session(folder, SMALL_INLINE)
        for secret in all_secrets:  # each echoed in its own exchange, all carried in each
            session.add(exchange(secret, list(carriers), echoes, path_prefix=f"/{len(secret)}"))
        session.flush(everything=True)
        for secret in all_secrets:
            assert files_holding(folder, secret) == []


# --- every surface, one policy (issue 13) ------------------------------------------------------
# Random JSON, form, header and query structures with secret-named fields at random depths go
# through each way out: a recording, a HAR export, the traffic API, a prompt for an LLM. No
# secret value may survive, in any encoding; every other value must come out unchanged.

POLICY = RULES.policy
PLACEHOLDER = POLICY.placeholder
SECRET_FIELDS = [
    "password",
    "Password",
    "passwd",
    "pwd",
    "secret",
    "client_secret",
    "clientSecret",
    "token",
    "access_token",
    "accessToken",
    "refresh_token",
    "id_token",
    "api_key",
    "apiKey",
    "API-KEY",
    "session_id",
    "sessionId",
    "PHPSESSID",
    "private_key",
    "aws_secret_access_key",
    "x_auth_token",
    "credentials",
    "otp",
    "jwt",
    "signature",
    "user[password]",
]
# Ordinary names, some close to secret ones: the policy must leave them alone.
PLAIN_FIELDS = ["id", "name", "title", "count", "items", "meta", "kind", "tags", "user", "page"]
PLAIN_FIELDS += ["token_type", "sort_key", "key", "tokens", "max_tokens", "monkey"]
PLAIN_QUERY = ["q", "page", "sort", "fields", "limit"]
PLAIN_HEADERS = ["Accept", "X-Trace", "X-Request-Id", "X-Page", "User-Agent"]
plain_text = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", max_size=8)
# Secrets as above, drawn faster: a message holds dozens of them.
tokens = st.text(
    alphabet=string.ascii_letters + string.digits + "_.~+/=-", min_size=13, max_size=29
).map(lambda t: f"sk_{t}")  # a prefix no plain text has ("application/json" is a fine token)
plain_values = plain_text | st.integers(-1000, 1000) | st.booleans() | st.none()


def test_the_policy_knows_the_names_used_below() -> None:
    assert all(POLICY.is_secret(n) for n in [*SECRET_FIELDS, *SECRET_HEADERS])
    assert all(POLICY.is_secret(n, query=True) for n in SECRET_QUERY)
    assert not any(POLICY.is_secret(n) for n in [*PLAIN_FIELDS, *PLAIN_HEADERS])
    assert not any(POLICY.is_secret(n, query=True) for n in PLAIN_QUERY)


@st.composite
def tree(draw: st.DrawFn, secret: bool = False, depth: int = 0) -> Any:
    """JSON whose strings under a secret-named key (at any depth) are secrets, and whose
    other values are plain."""
    if depth >= 4 or (depth > 0 and draw(st.integers(0, 2)) == 0):
        return draw(tokens) if secret else draw(plain_values)
    if draw(st.booleans()):
        keys = draw(st.lists(st.sampled_from(SECRET_FIELDS + PLAIN_FIELDS), max_size=3))
        return {k: draw(tree(secret or k in SECRET_FIELDS, depth + 1)) for k in keys}
    return draw(st.lists(tree(secret, depth + 1), max_size=2))


@st.composite
def document(draw: st.DrawFn) -> dict[str, Any]:
    """A JSON object with at least one secret somewhere."""
    doc: dict[str, Any] = draw(tree()) if draw(st.booleans()) else {}
    if not isinstance(doc, dict):
        doc = {"data": doc}
    doc[draw(st.sampled_from(SECRET_FIELDS))] = draw(tree(secret=True, depth=1))
    return doc


def redacted(value: Any, found: set[str]) -> Any:
    """What `value` must become: its secrets replaced, everything else as it was."""
    if isinstance(value, str) and value in found:
        return PLACEHOLDER
    if isinstance(value, dict):
        return {k: redacted(v, found) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v, found) for v in value]
    return value


def secrets_in(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value} if len(value) >= 16 else set()  # plain strings are at most 8 long
    if isinstance(value, dict):
        return set().union(*(secrets_in(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(secrets_in(v) for v in value))
    return set()


def unique_names(names: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(names), max_size=3, unique_by=str.lower)


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    """One exchange's worth of structures: query, request and response headers, a JSON or
    form request body and a JSON or form answer."""
    query = [(n, draw(tokens)) for n in draw(unique_names(SECRET_QUERY))]
    query += [(n, draw(plain_text)) for n in draw(unique_names(PLAIN_QUERY))]
    headers, header_secrets = [], []
    for name in draw(unique_names(SECRET_HEADERS)):
        secret = draw(tokens)
        header_secrets.append(secret)
        value = {"cookie": f"a=b; sid={secret}", "set-cookie": f"sid={secret}; Path=/"}.get(
            name, f"Bearer {secret}" if "authorization" in name else secret
        )
        headers.append((draw(any_case(name)), value))
    plain_headers = [(n, draw(plain_text)) for n in draw(unique_names(PLAIN_HEADERS))]
    form = [(n, draw(tokens)) for n in draw(unique_names(SECRET_FIELDS))]
    form += [(n, draw(plain_text)) for n in draw(unique_names(PLAIN_FIELDS))]
    return {
        "query": draw(st.permutations(query)),
        "headers": draw(st.permutations(headers + plain_headers)),
        "plain_headers": plain_headers,
        "header_secrets": header_secrets,
        "request_json": draw(document()),
        "response_json": draw(document()),
        "form": draw(st.permutations(form)),
        "request_is_form": draw(st.booleans()),
        "response_is_form": draw(st.booleans()),
    }


def all_secrets(m: dict[str, Any]) -> set[str]:
    found = secrets_in(m["request_json"]) | secrets_in(m["response_json"])
    found |= {v for _, v in m["query"] if len(v) >= 16}
    found |= {v for _, v in m["form"] if len(v) >= 16}
    return found | set(m["header_secrets"])


def leaked(text: str, found: set[str]) -> list[str]:
    """The secrets in `text`, as they are or URL-encoded."""
    return [s for s in found if s in text or quote(s, safe="") in text or quote_plus(s) in text]


def plain_query(m: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in m["query"] if not POLICY.is_secret(k, query=True)}


def form_out(m: dict[str, Any]) -> list[tuple[str, str]]:
    return [(k, PLACEHOLDER if POLICY.is_secret(k) else v) for k, v in m["form"]]


def bodies(m: dict[str, Any]) -> tuple[bytes, str, bytes, str]:
    form = urlencode(m["form"]).encode(), "application/x-www-form-urlencoded"
    request = form if m["request_is_form"] else (json.dumps(m["request_json"]).encode(), JSON)
    response = form if m["response_is_form"] else (json.dumps(m["response_json"]).encode(), JSON)
    return (*request, *response)


JSON = "application/json"


def check_body(out: bytes | str, m: dict[str, Any], is_form: bool, doc: Any) -> None:
    text = out.decode() if isinstance(out, bytes) else out
    if is_form:
        assert parse_qsl(text, keep_blank_values=True) == form_out(m)
    else:
        assert json.loads(text) == redacted(doc, all_secrets(m))


@settings(max_examples=100)  # a file written per example
@given(messages())
def test_recordings_keep_no_secret_and_every_plain_value(m: dict[str, Any]) -> None:
    request_body, request_type, response_body, response_type = bodies(m)
    query = tuple(m["query"])
    request_headers = tuple([*m["headers"], ("Content-Type", request_type)])
    response_headers = tuple([*m["headers"], ("Content-Type", response_type)])
    ex = Exchange(
        "POST",
        "https",
        "api.test",
        443,
        "/items",
        query,
        request_headers,
        request_body,
        200,
        response_headers,
        response_body,
    )
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        session = Session(folder, SMALL_INLINE if m["request_is_form"] else RULES)
        session.add(ex)
        session.flush(everything=True)
        text = "".join(p.read_text() for p in folder.rglob("*") if p.is_file())
        assert leaked(text, all_secrets(m)) == []
        (mock,) = yaml.safe_load(next(folder.glob("*.yaml")).read_text())["mocks"]
        # A matcher made from a redacted value would only match the placeholder.
        assert PLACEHOLDER not in json.dumps(mock["request"])
        assert mock["request"].get("query", {}) == plain_query(m)
        response = mock["response"]
        for header, value in m["plain_headers"]:
            assert response["headers"][header] == value
        if "body_file" in response:
            data = (folder / response["body_file"]).read_bytes()
            check_body(data, m, m["response_is_form"], m["response_json"])
        elif m["response_is_form"]:
            check_body(response.get("body", ""), m, True, None)
        else:
            assert response["body"] == redacted(m["response_json"], all_secrets(m))


@settings(max_examples=50)  # a file written and loaded per example
@given(messages())
def test_har_exports_keep_no_secret_and_every_plain_value(m: dict[str, Any]) -> None:
    """A mock file holding secrets (written before the rules, or by hand) exports without."""
    _, _, response_body, response_type = bodies(m)
    request: dict[str, Any] = {"method": "POST", "host": "api.test", "path": "/items"}
    request["query"] = dict(m["query"])
    if not m["request_is_form"]:
        request["body"] = {"json": m["request_json"]}
    headers = {k: v for k, v in m["headers"] if k.lower() != "content-type"}
    headers["Content-Type"] = response_type
    response = {"status": 200, "headers": headers, "body": response_body.decode()}
    mock = {"name": "items", "request": request, "response": response}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "session").mkdir()
        (folder / "session" / "api.yaml").write_text(dump_mocks([mock]))
        assert export_har(folder / "session", folder / "out.har", POLICY) == 1
        text = (folder / "out.har").read_text()
    assert leaked(text, all_secrets(m)) == []
    (entry,) = json.loads(text)["log"]["entries"]
    exported_query = parse_qsl(urlsplit(entry["request"]["url"]).query, keep_blank_values=True)
    assert {k: v for k, v in exported_query if v != PLACEHOLDER} == plain_query(m)
    if not m["request_is_form"]:
        check_body(entry["request"]["postData"]["text"], m, False, m["request_json"])
    check_body(entry["response"]["content"]["text"], m, m["response_is_form"], m["response_json"])
    exported_headers = {h["name"]: h["value"] for h in entry["response"]["headers"]}
    for header, value in m["plain_headers"]:
        assert exported_headers[header] == value


def _message(headers: list[tuple[str, str]], body: bytes) -> Message:
    fields = tuple((k.encode(), v.encode()) for k, v in headers)
    return Message(fields, body, len(body))


@given(messages())
def test_the_traffic_api_shows_no_secret_and_every_plain_value(m: dict[str, Any]) -> None:
    request_body, request_type, response_body, response_type = bodies(m)
    path = "/items?" + urlencode(m["query"])
    log = TrafficLog(5, POLICY)
    log.add(
        TrafficExchange(
            log.next_id(),
            0.0,
            "POST",
            ("https", "api.test", 443, path),
            200,
            "upstream",
            None,
            1.0,
            _message([*m["headers"], ("Content-Type", request_type)], request_body),
            _message([*m["headers"], ("Content-Type", response_type)], response_body),
        )
    )
    (entry,) = log.recent()
    found = all_secrets(m)
    with time_bound(10):
        summary, shown, draft = entry.summary(POLICY), entry.to_json(POLICY), entry.draft(POLICY)
    for out in (summary, shown, draft):
        assert leaked(json.dumps(out), found) == []
    for secret in found:  # the search finds nothing the list would not show
        assert log.recent(text=secret) == []
    assert parse_qsl(urlsplit(shown["url"]).query, keep_blank_values=True) == [
        (k, PLACEHOLDER if POLICY.is_secret(k, query=True) else v) for k, v in m["query"]
    ]
    check_body(shown["request"]["body"], m, m["request_is_form"], m["request_json"])
    check_body(shown["response"]["body"], m, m["response_is_form"], m["response_json"])
    for header, value in m["plain_headers"]:
        assert [header, value] in shown["request"]["headers"]
    assert draft["request"].get("query", {}) == plain_query(m)


@given(messages())
def test_prompts_carry_no_secret_and_every_plain_value(m: dict[str, Any]) -> None:
    request_body, request_type, _, _ = bodies(m)
    headers = Headers([*m["headers"], ("Content-Type", request_type)])
    view = RequestView("POST", "https", "api.test", 443, "/items", tuple(m["query"]), headers)
    view._body = request_body
    with time_bound(10):
        prompt = build_prompt(GenerationRequest.from_view(view, POLICY))
    assert leaked(prompt, all_secrets(m)) == []
    sent = json.loads(prompt)["request"]
    assert sent["query"] == plain_query(m)
    if m["request_is_form"]:
        check_body(sent["body"], m, True, None)
    else:
        assert sent["body"] == redacted(m["request_json"], all_secrets(m))
