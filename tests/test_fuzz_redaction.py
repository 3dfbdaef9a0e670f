"""Property tests for the recorder's redaction (core/recording.py): whatever header or query
parameter carries a secret, in whatever case, however often, and wherever the upstream echoes
it, the files the real writer puts on disk never contain it."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mockbox.core.library import MockLibrary
from mockbox.core.recording import Exchange, Rules, Session
from mockbox.core.templating import TemplateEngine

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
