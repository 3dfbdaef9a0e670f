"""The offline provider: answers from what MockBox already knows about an API, no network.

It takes the shape of the nearest sibling route (`/users/7` looks like `/users/3`; an item of
`/users` looks like an element of its list, and the other way round) and fills it with
field-name-aware fake data, seeded from the request so the same request gets the same answer.
When it knows nothing about a route it says so instead of inventing a random blob.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from faker import Faker

from .ai_answer import AIAnswer
from .ai_prompt import GenerationRequest, is_id_like, path_score
from .index import MockIndex
from .model import Mock
from .openapi_import import generate as generate_from_schema
from .pathtemplate import Param
from .render import render
from .request import Headers, RequestView
from .templating import TemplateEngine, TemplateError

# Values that name a state or a kind: changing them would change what the answer means.
_KEEP_KEYS = {
    "status",
    "state",
    "type",
    "kind",
    "currency",
    "lang",
    "language",
    "locale",
    "role",
    "plan",
    "object",
    "version",
    "format",
    "method",
    "unit",
}
LIST_ENVELOPES = ("data", "items", "results", "records", "entries", "content", "list")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.I)
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?(\.\d+)?(Z|[+-]\d{2}:?\d{2})?)?$"
)
_URL = re.compile(r"^https?://", re.I)

# Field name (lower case, without separators) → Faker method.
_BY_NAME: dict[str, str] = {
    "email": "email",
    "mail": "email",
    "name": "name",
    "fullname": "name",
    "author": "name",
    "firstname": "first_name",
    "givenname": "first_name",
    "lastname": "last_name",
    "surname": "last_name",
    "familyname": "last_name",
    "username": "user_name",
    "login": "user_name",
    "phone": "phone_number",
    "phonenumber": "phone_number",
    "mobile": "phone_number",
    "city": "city",
    "country": "country",
    "address": "street_address",
    "street": "street_address",
    "zip": "postcode",
    "zipcode": "postcode",
    "postcode": "postcode",
    "postalcode": "postcode",
    "url": "url",
    "website": "url",
    "link": "url",
    "href": "url",
    "homepage": "url",
    "avatar": "image_url",
    "image": "image_url",
    "photo": "image_url",
    "picture": "image_url",
    "thumbnail": "image_url",
    "title": "catch_phrase",
    "description": "sentence",
    "summary": "sentence",
    "bio": "sentence",
    "text": "sentence",
    "content": "paragraph",
    "comment": "sentence",
    "message": "sentence",
    "company": "company",
    "organization": "company",
    "job": "job",
    "jobtitle": "job",
    "color": "color_name",
    "uuid": "uuid4",
    "guid": "uuid4",
    "isbn": "isbn13",
    "iban": "iban",
    "ip": "ipv4",
    "ipaddress": "ipv4",
    "slug": "slug",
    "word": "word",
    "tag": "word",
    "label": "word",
    "category": "word",
    "domain": "domain_name",
    "hostname": "domain_name",
    "state": "state",
}


# An example body is rendered on the event loop: a mock whose templates are slow (or hostile)
# is skipped as an example rather than allowed to hold every other client.
EXAMPLE_SECONDS = 0.02


class OfflineGenerator:
    def __init__(self, engine: TemplateEngine, locale: str = "en_US") -> None:
        self.engine = engine
        self.fake = Faker(locale)

    def generate(self, req: GenerationRequest, index: MockIndex, seed: int) -> AIAnswer | None:
        """An answer shaped like the nearest sibling route, or None when nothing is known."""
        if req.body_schema is not None:
            body = generate_from_schema(req.body_schema, f"{req.method} {req.url}", _ignore)
            if body is not None:
                status = 201 if req.method.upper() == "POST" else 200
                headers = {"Content-Type": "application/json"}
                return AIAnswer(status, headers, body, "Offline: generated from the API's schema.")
        shape, status, source = self._shape(req, index)
        if shape is None and req.schema_hint:
            shape, status, source = self._hinted(req)
        if shape is None:
            return None
        self.fake.seed_instance(seed)
        ids = [s for s in req.segments if is_id_like(s)]
        body = self._refake(shape, "", ids[-1] if ids else None)
        method = req.method.upper()
        if (
            method in ("POST", "PUT", "PATCH")
            and isinstance(body, dict)
            and isinstance(req.body, dict)
        ):
            body.update(req.body)  # what the client sent is what a real API stores
        if method == "POST":
            status = 201
        elif method == "DELETE":
            return AIAnswer(204, {}, None, f"Offline: a deletion, shaped after {source}.")
        headers = {"Content-Type": "application/json"}
        explanation = f"Offline provider: shaped after {source}, filled with fake data."
        return AIAnswer(status if 200 <= status < 300 else 200, headers, body, explanation)

    def _shape(self, req: GenerationRequest, index: MockIndex) -> tuple[Any, int, str]:
        """The example body to imitate, its status, and where it came from."""
        candidates = sorted(
            (
                m
                for m in _same_host(index.mocks, req.host)
                if path_score(m, req.method, req.segments) > 0
            ),
            key=lambda m: (path_score(m, req.method, req.segments), -m.order),
            reverse=True,
        )
        n = len(req.segments)
        for mock in candidates:
            body = self._example_body(mock, req)
            if body is None:
                continue
            depth = len(mock.path.segments)
            source = f"{mock.name} ({mock.id})"
            if depth == n:
                return body, mock.response.status, source
            if depth == n - 1 and is_id_like(req.segments[-1]):
                item = _item_of(body)
                if item is not None:
                    return item, 200, f"an item of {source}"
            last = mock.path.segments[-1] if mock.path.segments else None
            if depth == n + 1 and (isinstance(last, Param) or (last and is_id_like(last))):
                if req.method.upper() == "POST":  # creating in a collection answers the item
                    return body, 201, f"a new item like {source}"
                return [body, body, body], 200, f"a list of {source}"  # refaked one by one
        return None, 0, ""

    def _hinted(self, req: GenerationRequest) -> tuple[Any, int, str]:
        """A body from the schema hint alone (a route of an API MockBox has not seen)."""
        item = hint_shape(req.schema_hint)
        if item is None:
            return None, 0, ""
        source = f"the schema hint ({', '.join(item)})"
        last = req.segments[-1] if req.segments else ""
        if req.method.upper() != "GET" or not last or is_id_like(last):
            return item, 200, source
        count = {"simple": 2, "medium": 3}.get(req.complexity, 5)
        return [item] * count, 200, f"{source}, as a list of {count}"  # refaked one by one

    def _example_body(self, mock: Mock, req: GenerationRequest) -> Any:
        """The example's body, rendered when it is a template (for a request like ours)."""
        spec = mock.response
        if spec.body_bytes is not None and spec.body is None:
            try:
                return json.loads(spec.body_bytes)
            except ValueError:
                return None
        if spec.body is None:
            return None
        params = {
            p.name: seg
            for p, seg in zip(mock.path.segments, req.segments, strict=False)
            if isinstance(p, Param)
        }
        view = RequestView("GET", "http", req.host, 80, mock.path.text, (), Headers(), b"")
        try:
            rendered = render(spec, self.engine, view, params, EXAMPLE_SECONDS)
            return json.loads(rendered.body)
        except (TemplateError, ValueError):
            return None

    def _refake(self, value: Any, key: str, item_id: str | None) -> Any:
        name = _normalized(key)
        if isinstance(value, dict):
            return {
                k: self._refake(v, k, item_id if not isinstance(v, (dict, list)) else None)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._refake(v, key, None) for v in value]
        if key.lower() in _KEEP_KEYS or value is None:
            return value
        if isinstance(value, bool):
            return self.fake.boolean()
        if name == "id" and item_id is not None:
            return int(item_id) if item_id.isdigit() and isinstance(value, int) else item_id
        if isinstance(value, int):
            return self.fake.random_int(1, max(10, abs(value) * 2))
        if isinstance(value, float):
            return round(self.fake.pyfloat(min_value=0, max_value=max(10.0, abs(value) * 2)), 2)
        if isinstance(value, str):
            return self._fake_text(key, value)
        return value

    def _fake_text(self, key: str, value: str) -> str:
        method = faker_method(key, value)
        if method == "iso":
            return self.fake.date_time_this_year().isoformat() + (
                "Z" if value.endswith("Z") else ""
            )
        if method is not None:
            return str(getattr(self.fake, method)())
        words = len(value.split())
        if words > 3:
            return str(self.fake.sentence(nb_words=words))
        return (
            " ".join(self.fake.words(nb=max(1, words))).capitalize()
            if value[:1].isupper()
            else " ".join(self.fake.words(nb=max(1, words)))
        )


def _ignore(_problem: str) -> None:
    """A schema jsf cannot satisfy falls back to the sibling routes, silently."""


def faker_method(key: str, value: str) -> str | None:
    """The Faker method that makes a realistic value for the field `key` now holding `value`
    ("iso" for a timestamp), from the field's name first, then from the value's form."""
    if key.lower() in _KEEP_KEYS:
        return None
    name = _normalized(key)
    method = _BY_NAME.get(name)
    if method is None and name.endswith(("at", "date", "time")) and _DATETIME.match(value):
        method = "iso"
    if method is None:
        if _EMAIL.match(value):
            method = "email"
        elif _UUID.match(value):
            method = "uuid4"
        elif _URL.match(value):
            method = "url"
        elif _DATETIME.match(value):
            method = "iso"
    return method


def hint_shape(hint: str) -> dict[str, Any] | None:
    """An example object from a schema hint such as "id, title, price: number, tags[]"."""
    fields: dict[str, Any] = {}
    for token in re.split(r"[,;\n]+", hint):
        m = _HINT_FIELD.match(token.strip())
        if m is None:
            continue
        name, many, kind = m.groups()
        value = _hint_value(name, (kind or "").lower())
        fields[name] = [value, value] if many else value
    return fields or None


_HINT_FIELD = re.compile(r"^([A-Za-z_][\w-]*)\s*(\[\])?(?:\s*:\s*([A-Za-z]+))?$")
_HINT_KINDS: dict[str, Any] = {
    "int": 1,
    "integer": 1,
    "number": 9.99,
    "float": 9.99,
    "decimal": 9.99,
    "bool": True,
    "boolean": True,
    "date": "2024-01-01",
    "datetime": "2024-01-01T12:00:00Z",
    "timestamp": "2024-01-01T12:00:00Z",
    "email": "someone@example.com",
    "url": "https://example.com/",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}
_COUNTS = ("count", "total", "quantity", "qty", "age", "size", "year", "rank", "stock")
_AMOUNTS = ("price", "amount", "cost", "balance", "rating", "score", "weight")


def _hint_value(name: str, kind: str) -> Any:
    """A typed placeholder for a hinted field; _refake turns it into fake data."""
    if kind in _HINT_KINDS:
        return _HINT_KINDS[kind]
    n = _normalized(name)
    if n == "id" or n.endswith("id") or n.endswith(_COUNTS):
        return 1
    if n.endswith(_AMOUNTS):
        return 9.99
    if n.startswith(("is", "has", "can")) or n in ("active", "enabled", "verified", "paid"):
        return True
    if n.endswith(("at", "date", "time")):
        return "2024-01-01T12:00:00Z"
    return "text"


def _normalized(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


def _same_host(mocks: Iterable[Mock], host: str) -> Iterable[Mock]:
    return (m for m in mocks if m.host is not None and m.host.test(host, m.host.port or 0))


def _item_of(body: Any) -> Any:
    """An element of a list answer, bare or in an envelope such as {"data": [...]}."""
    if isinstance(body, list):
        return body[0] if body and isinstance(body[0], dict) else None
    if isinstance(body, dict):
        for key in LIST_ENVELOPES:
            inner = body.get(key)
            if isinstance(inner, list) and inner and isinstance(inner[0], dict):
                return inner[0]
    return None
