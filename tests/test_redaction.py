"""The redaction policy and walkers (core/redaction.py), in-process: which names are secret,
how the configuration changes that, and the free-text scrubbers used for provider errors, logs
and Redis URLs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mockbox.core.ai_prompt import PROMPT_JSON_BYTES, GenerationRequest
from mockbox.core.config import ConfigError, load_config
from mockbox.core.redaction import (
    MAX_DEPTH,
    Policy,
    Redactor,
    Secrets,
    redact_url,
    scrub_credentials,
)
from mockbox.core.request import RequestView

POLICY = Policy.default()


@pytest.mark.parametrize(
    "name",
    [
        "Private-Token",
        "X-GitHub-Token",
        "X-Anything-Token",
        "X-Client-Secret",
        "Ocp-Apim-Subscription-Key",
        "X-API-KEY",
        "AuThOrIzAtIoN",
        "Proxy-Authorization",
        "Set-Cookie",
        "password",
        "new_password",
        "passwordConfirmation",
        "client_secret",
        "clientSecret",
        "access_token",
        "refreshToken",
        "id_token",
        "api_key",
        "apiKey",
        "session_id",
        "sessionId",
        "PHPSESSID",
        "JSESSIONID",
        "ASP.NET_SessionId",
        "aws_secret_access_key",
        "user[password]",
    ],
)
def test_secret_names(name: str) -> None:
    assert POLICY.is_secret(name) and POLICY.is_secret(name, query=True)


@pytest.mark.parametrize(
    "name",
    ["token_type", "nextPageToken", "prompt_tokens", "sort_key", "Idempotency-Key", "monkey"],
)
def test_names_that_only_look_secret(name: str) -> None:
    assert not POLICY.is_secret(name) and not POLICY.is_secret(name, query=True)


def test_key_is_secret_in_query_strings_only() -> None:
    assert POLICY.is_secret("key", query=True) and not POLICY.is_secret("key")


def test_the_configuration_adds_and_keeps_names(tmp_path: Path) -> None:
    user = tmp_path / "mockbox.yaml"
    user.write_text(
        "redact:\n  extra_names: [X-Tenant, '*-pin']\n  keep: [x-api-key]\n"
        "  placeholder: '[secret]'\n"
    )
    policy = Policy.from_config(load_config(user).get("redact"))
    assert policy.is_secret("x-tenant") and policy.is_secret("card_pin")
    assert not policy.is_secret("X-Api-Key") and policy.is_secret("password")  # defaults stay
    redactor = Redactor(policy)
    assert redactor.json({"tenant": "t", "x_tenant": "acme"}) == {
        "tenant": "t",
        "x_tenant": "[secret]",
    }
    user.write_text("redact:\n  extra_names: x-tenant\n")
    with pytest.raises(ConfigError, match=r"redact\.extra_names must be a list"):
        Policy.from_config(load_config(user).get("redact"))


def test_json_walk_keeps_structure_and_types_that_tell_nothing() -> None:
    redactor = Redactor(POLICY)
    doc = {
        "user": {"name": "ann", "credentials": {"password": "p4ssw0rd!", "pin": 1234}},
        "items": [{"access_token": "tok-1234567890", "id": 1}],
        "has_password": True,
        "secret": None,
    }
    assert redactor.json(doc) == {
        "user": {"name": "ann", "credentials": {"password": "REDACTED", "pin": "REDACTED"}},
        "items": [{"access_token": "REDACTED", "id": 1}],
        "has_password": True,
        "secret": None,
    }
    assert redactor.found.values == {"tok-1234567890", "p4ssw0rd!"}  # 1234: too short to chase


def test_json_deeper_than_the_bound_is_cut_not_crashed() -> None:
    deep: object = "leaf"
    for _ in range(MAX_DEPTH + 50):
        deep = {"a": deep}
    out = Redactor(POLICY).body(json.dumps(deep).encode(), "application/json")
    assert b"leaf" not in out and b"REDACTED" in out


def test_headers_keep_what_is_not_secret() -> None:
    redactor = Redactor(POLICY)
    assert redactor.header("Authorization", "Bearer abc.def-123") == "Bearer REDACTED"
    assert redactor.header("Cookie", "sid=abc; theme=dark") == "sid=REDACTED; theme=REDACTED"
    assert redactor.header("Set-Cookie", "sid=xyz; Path=/") == "sid=REDACTED; Path=/"
    assert redactor.header("X-Trace", "t-1") == "t-1"


def test_urls_keep_every_other_byte() -> None:
    redactor = Redactor(POLICY)
    url = "https://u:pw-123456@api.test/a%20b?q=a+b&api_key=k%2Bey-123456&key=AIza1&x"
    assert redactor.url(url) == (
        "https://u:REDACTED@api.test/a%20b?q=a+b&api_key=REDACTED&key=REDACTED&x"
    )
    assert {"k+ey-123456", "k%2Bey-123456", "pw-123456"} <= redactor.found.values


def test_form_multipart_and_text_bodies() -> None:
    redactor = Redactor(POLICY)
    form = b"grant_type=password&username=ann&password=p%40ss-123456&client_secret=cs-1"
    assert (
        redactor.body(form, "application/x-www-form-urlencoded")
        == b"grant_type=password&username=ann&password=REDACTED&client_secret=REDACTED"
    )
    multipart = (
        b'--XyZ\r\nContent-Disposition: form-data; name="user"\r\n\r\nann\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="password"\r\n\r\nmp-secret-1\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\n'
        b"\x00\xff\r\n--XyZ--\r\n"
    )
    out = redactor.body(multipart, 'multipart/form-data; boundary="XyZ"')
    assert out == multipart.replace(b"mp-secret-1", b"REDACTED")
    soap = b'<s:Body><m:Login><m:User>ann</m:User><m:Password a="1">pw-xml-1</m:Password>'
    assert redactor.body(soap + b"</m:Login></s:Body>", "text/xml") == (
        b'<s:Body><m:Login><m:User>ann</m:User><m:Password a="1">REDACTED</m:Password>'
        b"</m:Login></s:Body>"
    )
    page = b'<a href="/x?token=tok-12345678">go</a><script>var c = {"csrf_token": "c-1"}</script>'
    assert redactor.body(page, "text/html") == (
        b'<a href="/x?token=REDACTED">go</a><script>var c = {"csrf_token": "REDACTED"}</script>'
    )


def test_secrets_are_chased_in_one_pass_longest_first() -> None:
    secrets = Secrets("R", ["abc-1234567", "Bearer abc-1234567", "short"])
    text = "x Bearer abc-1234567 y abc-1234567abc-1234567 short"
    assert secrets.scrub(text) == "x R y RR short"  # "short" is too short to chase
    assert secrets.scrub_bytes(text.encode()) == b"x R y RR short"
    many = Secrets("R", (f"key-{i:08d}" for i in range(20_000)))
    assert many.scrub("a key-00000042 b key-00019999") == "a R b R"
    assert many.scrub_tree({"key-00000001": ["key-00000002"]}) == {"R": ["R"]}


def test_redis_urls_lose_their_password_and_secret_parameters() -> None:
    assert redact_url("redis://user:pw@cache:6379/0") == "redis://user:REDACTED@cache:6379/0"
    assert redact_url("rediss://:only-password@cache") == "rediss://:REDACTED@cache"
    assert redact_url("unix:///run/redis.sock?password=pw&db=1") == (
        "unix:///run/redis.sock?password=REDACTED&db=1"
    )
    assert redact_url("redis://cache:6379") == "redis://cache:6379"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Incorrect API key provided: Bearer cfg-Provider-Key-0011.", "cfg-Provider-Key-0011"),
        ("Incorrect API key provided: sk-proj-abc12***********wxyz.", "sk-proj-abc12"),
        (
            "key AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStU invalid",
            "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStU",
        ),
        ("token ghp_abcdefghijklmnopqrstuvwxyz0123 revoked", "ghp_abcdefghijklmnopqrstuvwxyz0123"),
        ("slack xoxb-1234567890-abcdefghij failed", "xoxb-1234567890-abcdefghij"),
        ("aws AKIAIOSFODNN7EXAMPLE denied", "AKIAIOSFODNN7EXAMPLE"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln expired", "eyJhbGciOiJIUzI1NiJ9"),
        ("bearer Zm9vOmJhcjEyMw== refused", "Zm9vOmJhcjEyMw=="),
        ("{'api_key': 'plain-key-value', 'x': 1}", "plain-key-value"),
        ('{"password": "hunter22"}', "hunter22"),
        ("GET /v1?access_token=tok-value-1&x=1 failed", "tok-value-1"),
        ("opaque Xk9fQ2mZ7pL4vB8nR1tY6wE3sA5dF0gH in text", "Xk9fQ2mZ7pL4vB8nR1tY6wE3sA5dF0gH"),
        ("redis://user:pw-123@cache refused", "pw-123"),
    ],
)
def test_provider_error_text_loses_every_credential(text: str, secret: str) -> None:
    out = scrub_credentials(text, known=["cfg-Provider-Key-0011"])
    assert secret not in out and "REDACTED" in out


def test_provider_error_text_stays_readable() -> None:
    text = (
        "Error code: 404 - model claude-haiku-4-5-20251001 not found; see "
        "https://platform.openai.com/account/api-keys (Token expired, basic auth failed)"
    )
    assert scrub_credentials(text) == text


def test_a_large_json_body_reaches_a_prompt_cut_and_redacted() -> None:
    """Walking megabytes for a prompt would hold the event loop: past PROMPT_JSON_BYTES the
    body is redacted as text, then cut."""
    doc = {"password": "pw-in-a-large-body", "items": ["x" * 100] * 4000}
    body = json.dumps(doc).encode()
    assert len(body) > PROMPT_JSON_BYTES
    view = RequestView("POST", "https", "api.test", 443, "/p", body=body)
    sent = GenerationRequest.from_view(view, POLICY).body
    assert isinstance(sent, str) and len(sent) == 4000
    assert sent.startswith('{"password": "REDACTED", "items": ["xxx')
