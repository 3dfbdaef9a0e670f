"""Hostile templates against a live `mockbox run` (issue 13): none runs code, and none keeps
another client waiting. A canary client asks for a plain mock every 50 ms while an attacker
requests one hostile mock after another; every hostile answer is a MOCK_TEMPLATE_ERROR (or,
for a slow but legal template, its answer) and the canary never waits more than 100 ms."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import CANARY_MOCK, Canary, MockBox, MockBoxFactory, write_mocks

BUSY = "{% for i in range(100000) %}{% for j in range(3) %}{% endfor %}{% endfor %}"  # ~100 ms
SLOW = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
TWENTY = "\n".join(f"        k{i}: '{SLOW}'" for i in range(20))

# The body of each hostile mock, as YAML.
STALLS = {
    # 20 strings that each run until stopped: one budget for the answer, not 20 (old: 40 s).
    "twenty_slow_strings": "\n" + TWENTY,
    "fake_json_rows": "'{{ fake.json(num_rows=100000) }}'",  # old: 39 s
    "fake_texts": "'{{ fake.texts(nb_texts=300000) }}'",  # old: 12 s
    # 100,001 insertions of 10,000 characters: 1 GB (old: built, past the 8 Mi cap)
    "replace_empty_needle": "\"{{ ('a' * 100000).replace('', 'x' * 10000) | length }}\"",
    # a join over a generator of 100,000 items with a 10,000-character separator: 1 GB
    "join_generator": "\"{{ ('x' * 10000).join(range(100000) | map('string')) | length }}\"",
    "deep_loops": "'{% for i in range(100000) %}{% for j in range(100000) %}{{ j }}{% endfor %}"
    "{% endfor %}'",
}
# One answer's budget (2 s) plus as long again waiting for the render thread (3 attackers).
MOST_SECONDS = 4.5

ESCAPES = [
    # the issue's: Faker's get_formatter is an unguarded getattr
    "{% set ga = fake.get_formatter('__class__').get_formatter %}"
    "{% set os = ga(ga(cycler,'__init__'),'__globals__')['os'] %}{{ os.popen('id').read() }}",
    "{{ fake.factories[0].get_formatter('__class__') }}",
    "{{ fake.provider('faker.providers.misc').random.__class__ }}",
    "{{ fake.format('pyobject', dict) }}",
    "{{ fake.pystr_format('{{seed_instance}}') }}",
    "{{ fake.json(data_columns={'a': 'add_provider'}) }}",
    "{{ fake.pylist(value_types=['object']) }}",
    "{{ fake.enum(dict) }}",
    "{{ fake.uuid4(cast_to=fake.name) }}",
    "{{ fake.zip() }}",
    "{{ fake.seed_instance(1) }}",
    "{{ dict.fromkeys.__self__.__subclasses__() }}",
    "{{ cycler.__init__.__globals__['os'] }}",
    "{{ '%s' | format(lipsum) }}",
]


def _mock_file() -> str:
    lines = ["mocks:", CANARY_MOCK.strip("\n")]
    for name, body in STALLS.items():
        lines += [
            f"  - name: {name}",
            f"    request: {{method: GET, host: attack.test, path: /{name}}}",
            f"    response:\n      body: {body}",
        ]
    for i, template in enumerate(ESCAPES):
        quoted = template.replace("'", "''")
        lines += [
            f"  - name: escape{i}",
            f"    request: {{method: GET, host: attack.test, path: /escape/{i}}}",
            f"    response: {{body: '{quoted}'}}",
        ]
    lines += [
        "  - name: sequence",
        "    request: {method: GET, host: seq.test, path: /job}",
        "    responses:",  # the first answer is slow enough to move to a worker thread
        f"      - {{body: ['{{{{ fake.name() }}}}', '{BUSY}first']}}",
        "      - {body: second}",
        "  - name: same data",
        "    request: {method: GET, host: seq.test, path: /fake}",
        "    response:",
        "      body:",
        "        fast: '{{ fake.name() }} {{ fake.email() }}'",
        f"        slow: '{{% if query.slow %}}{BUSY}slow{{% endif %}}'",
        "  - name: items",
        "    request: {method: POST, host: data.test, path: /items}",
        "    response:",
        "      body: {n: '{{ body.items | length }}', keys: '{{ body.keys }}',",
        "             q: '{{ query.values }}'}",
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory, confdir: Path) -> Iterator[MockBox]:
    folder = tmp_path_factory.mktemp("attack")
    write_mocks(folder / "mocks", "attack.yaml", _mock_file())
    factory = MockBoxFactory(folder, confdir)
    started = factory(folder / "mocks", "--unmatched", "404")
    assert "attack.yaml" not in started.health().get("problems", ""), started.health()
    yield started
    factory.stop_all()


def _attack(box: MockBox, url: str, clients: int, seconds: float) -> list[tuple[float, int, str]]:
    """`clients` threads that request `url` one after another for `seconds` (at least once
    each); returns (elapsed, status, error code) for every request."""
    outcomes: list[tuple[float, int, str]] = []

    def run() -> None:
        started = time.monotonic()
        with box.client() as session:
            while True:
                began = time.monotonic()
                r = session.get(url, timeout=120)
                code = r.json().get("error", "") if r.status_code == 500 else ""
                outcomes.append((time.monotonic() - began, r.status_code, code))
                if time.monotonic() - started > seconds:
                    return

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


@pytest.mark.parametrize("stall", list(STALLS))
def test_a_hostile_template_never_keeps_the_canary_waiting(box: MockBox, stall: str) -> None:
    """Three attackers at once: more than the render threads, so renders also queue."""
    with Canary(box) as canary:
        outcomes = _attack(box, f"http://attack.test/{stall}", clients=3, seconds=1.5)
    print(f"\n{stall}: canary worst wait {canary.worst * 1000:.1f} ms over {len(canary.waits)}")
    assert outcomes
    for elapsed, status, code in outcomes:
        assert (status, code) == (500, "MOCK_TEMPLATE_ERROR")
        assert elapsed < MOST_SECONDS, (stall, elapsed)
    canary.assert_never_waited()


@pytest.mark.parametrize("index", range(len(ESCAPES)))
def test_an_escape_template_is_a_template_error(box: MockBox, index: int) -> None:
    r = box.get(f"http://attack.test/escape/{index}")
    assert r.status_code == 500, r.text
    data = r.json()
    assert data["error"] == "MOCK_TEMPLATE_ERROR" and data["mock"] == f"attack.yaml#escape{index}"
    assert "uid=" not in r.text and " at 0x" not in r.text


def test_an_answer_redone_in_a_thread_counts_its_sequence_step_once(box: MockBox) -> None:
    first = box.get("http://seq.test/job")
    assert first.status_code == 200 and first.json()[1] == "first"
    assert box.get("http://seq.test/job").text == "second"
    assert box.get("http://seq.test/job").text == "second"


def test_fake_data_is_the_same_for_the_same_request_on_the_loop_or_in_a_thread(
    box: MockBox,
) -> None:
    """`?slow=1` makes the answer too slow for its slice on the event loop, so it is rendered
    again in a worker thread: fake data, seeded from the request, comes out the same."""
    fast = [box.get("http://seq.test/fake?slow=").json() for _ in range(2)]
    slow = [box.get("http://seq.test/fake?slow=1").json() for _ in range(2)]
    assert fast[0] == fast[1] and slow[0] == slow[1]
    assert slow[0]["slow"] == "slow" and fast[0]["slow"] == ""
    other = box.get("http://seq.test/fake?slow=2").json()
    assert other["fast"] != slow[0]["fast"]  # another request, other data


def test_request_data_wins_over_method_names(box: MockBox) -> None:
    """Issue 18: `body.items` is the body's `items`, not dict.items."""
    with box.client() as s:
        r = s.post(
            "http://data.test/items?values=v",
            json={"items": [1, 2], "keys": "k"},
            timeout=10,
        )
    assert r.status_code == 200, r.text
    assert r.json() == {"n": 2, "keys": "k", "q": "v"}
