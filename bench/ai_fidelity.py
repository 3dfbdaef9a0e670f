"""AI fidelity: how close MockBox's answers to requests no mock matches come to the real API.

    .venv/bin/python bench/ai_fidelity.py [--private] [--api NAME ...] [--cases] [--json]
                                          [--check] [--smoke] [--keep]

The corpus (bench/ai_eval/corpus/, described in bench/ai_eval/README.md) holds real recorded
responses of public APIs. For each API the entries are split, deterministically, into "known"
ones, written as mock YAML with literal bodies and loaded into `mockbox run --unmatched ai`
(offline provider, no network), and "held out" ones, requested through the proxy. Each answer
is scored against the real recorded body by F1 over typed JSON key paths (`results[].name:string`:
array indices collapsed to `[]`, each path paired with the JSON type of its value). A refusal
(a 4xx/5xx answer, or no JSON) scores 0 and is counted. Beside it, the baseline "replay the
nearest recording" (the known response whose URL path is most like the requested one: same
segment count, most equal segments, ties by corpus order) is scored the same way.

Held-out requests fall into categories by what the host has shown: `sibling` (a known route with
another id), `list/item` (the family's list is known and an item is asked, or the reverse),
`nested` (a sub-resource under a known item), `unseen` (a family the host never showed), `root`.

By default only the public split runs: tune against it. `--private` adds the private APIs
(corpus/private/), reported only in aggregate; read bench/ai_eval/README.md before using it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import yaml
from common import BIN, REPO, free_port, mockbox_command, server

CORPUS = REPO / "bench" / "ai_eval" / "corpus"
PRIVATE = CORPUS / "private"
SMOKE_API = "pokeapi"
SMOKE_CASES = 4
# Share of an API's entries held out as whole resource families, so that "unseen" cases exist.
UNSEEN_SHARE = 0.2
CATEGORIES = ("sibling", "list/item", "nested", "unseen", "root")
# The aims of issue 15, for the public and private figures alike.
AIMS = {"overall": 0.70, "list/item": 0.85, "unseen": 0.45, "sibling": 0.97}
AIM_REFUSALS = 0.05


# --- scoring -------------------------------------------------------------------------------


def json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def key_paths(value: Any) -> set[str]:
    """Every node of a JSON value as `path:type`: the root is `$`, object members are joined
    with `.`, array elements of any index are `[]` (`results[].name:string`)."""
    out: set[str] = set()
    stack: list[tuple[str, Any]] = [("$", value)]
    while stack:
        path, node = stack.pop()
        out.add(f"{path}:{json_type(node)}")
        if isinstance(node, dict):
            for key, child in node.items():
                stack.append((str(key) if path == "$" else f"{path}.{key}", child))
        elif isinstance(node, list):
            element = "[]" if path == "$" else f"{path}[]"
            stack.extend((element, child) for child in node)
    return out


def f1(answer: Any, real: Any) -> float:
    """F1 of the answer's typed key paths against the real body's: precision = shared/answer,
    recall = shared/real."""
    got, want = key_paths(answer), key_paths(real)
    shared = len(got & want)
    if not shared:
        return 0.0
    precision, recall = shared / len(got), shared / len(want)
    return 2 * precision * recall / (precision + recall)


# --- corpus, routes, splits ----------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    api: str
    index: int  # position in the corpus file: "ties by order"
    method: str
    url: str
    status: int
    content_type: str
    body: Any
    route: str  # the documented route template, `/repos/{owner}/{repo}/labels/{name}`

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc


@dataclass(frozen=True)
class Api:
    name: str
    host: str
    split: str  # public | private
    style: str
    entries: tuple[Entry, ...]


def load_corpus(private: bool) -> list[Api]:
    files = sorted(p for p in CORPUS.glob("*/responses.json"))
    if private:
        files += sorted(PRIVATE.glob("*/responses.json"))
    apis = []
    for file in files:
        doc = json.loads(file.read_text())
        entries = tuple(
            Entry(
                api=doc["api"],
                index=i,
                method=e["method"],
                url=e["url"],
                status=e["status"],
                content_type=e["headers"]["content-type"],
                body=e["body"],
                route=e["route"],
            )
            for i, e in enumerate(doc["entries"])
        )
        apis.append(Api(doc["api"], doc["host"], doc["split"], doc["style"], entries))
    return apis


def segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def is_param(segment: str) -> bool:
    return "{" in segment


def is_root(route: str) -> bool:
    """The API's root: no parameter and nothing but `api` and version segments (`/`, `/api/v2/`)."""
    segs = segments(route)
    return not any(is_param(s) for s in segs) and all(
        s == "api" or (s[:1] == "v" and s[1:].isdigit()) for s in segs
    )


def family(route: str) -> str:
    """The resource family a route serves: its last literal segment, without `.json`."""
    literals = [s for s in segments(route) if not is_param(s)]
    return literals[-1].removesuffix(".json") if literals else ""


def kind(route: str) -> str:
    """`item` when the route ends in a parameter (`/gems/{gem}.json`), else `list`."""
    segs = segments(route)
    return "item" if segs and is_param(segs[-1]) else "list"


def _rank(api: str, name: str) -> str:
    return hashlib.sha1(f"{api}:{name}".encode()).hexdigest()


def split(api: Api) -> tuple[list[Entry], list[Entry]]:
    """Known and held-out entries, deterministically (bench/ai_eval/README.md, "Splits"): the
    root is held out; whole families, taken in the order of a hash of their names, are held out
    while they fit in a fifth of the entries; of a route with several entries the first is known
    and the rest held out; of a family with both list and item routes, one side (by hash parity)
    is held out."""
    held: set[int] = set()
    entries = api.entries
    for e in entries:
        if is_root(e.route):
            held.add(e.index)
    families = sorted({family(e.route) for e in entries if not is_root(e.route)})
    budget = max(1, round(len(entries) * UNSEEN_SHARE))
    unseen: set[str] = set()
    for fam in sorted(families, key=lambda f: _rank(api.name, f)):
        size = sum(family(e.route) == fam for e in entries if not is_root(e.route))
        if size <= budget:
            unseen.add(fam)
            budget -= size
    for e in entries:
        if family(e.route) in unseen:
            held.add(e.index)
    by_route: dict[str, list[Entry]] = {}
    for e in entries:
        if e.index not in held:
            by_route.setdefault(e.route, []).append(e)
    for group in by_route.values():
        held.update(e.index for e in group[1:])
    for fam in families:
        if fam in unseen:
            continue
        routes = {r: g for r, g in by_route.items() if family(r) == fam}
        kinds = {kind(r) for r in routes}
        if kinds != {"list", "item"}:
            continue
        drop = "item" if int(_rank(api.name, fam), 16) % 2 == 0 else "list"
        for r, g in routes.items():
            if kind(r) == drop and len(g) == 1:
                held.add(g[0].index)
    known = [e for e in entries if e.index not in held]
    return known, [e for e in entries if e.index in held]


def category(case: Entry, known: Sequence[Entry]) -> str:
    route = case.route
    if is_root(route):
        return "root"
    if any(k.route == route for k in known):
        return "sibling"
    if any(
        family(k.route) == family(route) and kind(k.route) != kind(route) and not is_root(k.route)
        for k in known
    ):
        return "list/item"
    segs = segments(route)
    for k in known:
        ks = segments(k.route)
        if kind(k.route) == "item" and len(ks) < len(segs) and segs[: len(ks)] == ks:
            return "nested"
    return "unseen"


def nearest(case: Entry, known: Sequence[Entry]) -> Entry | None:
    """The known recording whose URL path is most like the case's: the same number of segments,
    the most equal segments; ties go to the earlier one in the corpus."""
    want = segments(case.path)
    best: tuple[int, int] | None = None
    found = None
    for k in known:
        have = segments(k.path)
        if len(have) != len(want):
            continue
        score = (sum(a == b for a, b in zip(have, want, strict=True)), -k.index)
        if best is None or score > best:
            best, found = score, k
    return found


# --- mocks ---------------------------------------------------------------------------------


def mock_file(api: Api, known: Iterable[Entry]) -> str:
    """The known entries as mock YAML: literal bodies (strings that Jinja would read as templates
    are escaped the way MockBox's own writers do), path only (queries are not matched)."""
    from mockbox.core.mockwriter import literal  # the venv's MockBox, as `mockbox` itself

    mocks = [
        {
            "name": f"{e.method} {e.path}",
            "request": {"method": e.method, "host": api.host, "path": e.path},
            "response": {
                "status": e.status,
                "headers": {"Content-Type": e.content_type},
                "body": literal(e.body),
            },
        }
        for e in known
    ]
    return yaml.safe_dump({"mocks": mocks}, sort_keys=False, allow_unicode=True, width=100)


# --- running -------------------------------------------------------------------------------


@dataclass
class Case:
    api: str
    split: str
    url: str
    route: str
    category: str
    status: int
    source: str  # X-MockBox-Source of the answer
    refused: bool
    f1: float
    nearest_url: str | None
    nearest_f1: float


@dataclass
class Run:
    cases: list[Case] = field(default_factory=list)
    known: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


ENV = {
    "MOCKBOX_AI_PROVIDER": "offline",
    # One client at hundreds of requests a minute would meet the default limits.
    "MOCKBOX_RATE_LIMIT_AI": "none",
    "MOCKBOX_RATE_LIMIT_PUBLIC": "none",
}


def validate(folder: Path) -> None:
    done = subprocess.run(
        [str(BIN / "mockbox"), "validate", str(folder)], capture_output=True, text=True, cwd=REPO
    )
    if done.returncode != 0:
        raise SystemExit(f"mockbox validate failed:\n{done.stdout}{done.stderr}")


def ask(client: httpx.Client, url: str) -> tuple[int, str, Any]:
    """GET through the proxy (plain HTTP to the API's host): status, source, JSON body or None."""
    parts = urlsplit(url)
    target = f"http://{parts.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")
    try:
        r = client.get(target, headers={"Accept": "application/json"})
    except httpx.HTTPError as e:
        return 0, f"error: {type(e).__name__}", None
    try:
        body = r.json()
    except ValueError:
        body = None
    return r.status_code, r.headers.get("x-mockbox-source", ""), body


def run_api(api: Api, work: Path, limit: int | None) -> tuple[list[Case], int]:
    known, held = split(api)
    if limit is not None:
        held = held[:limit]
    mocks = work / api.name / "mocks"
    mocks.mkdir(parents=True)
    (mocks / f"{api.name}.yaml").write_text(mock_file(api, known))
    validate(mocks)
    port = free_port()
    command = mockbox_command(mocks, work / api.name / "conf", "--unmatched", "ai")(port)
    cases = []
    with (
        server(command, port, ENV),
        httpx.Client(proxy=f"http://127.0.0.1:{port}", timeout=20) as client,
    ):
        # The known mocks must answer, or every figure below would measure a broken setup.
        status, source, _ = ask(client, known[0].url)
        if status != known[0].status or source != "mock":
            raise SystemExit(f"{api.name}: {known[0].url} was not served by its mock ({status})")
        for case in held:
            status, source, body = ask(client, case.url)
            refused = status >= 400 or status == 0 or body is None
            near = nearest(case, known)
            cases.append(
                Case(
                    api=api.name,
                    split=api.split,
                    url=case.url,
                    route=case.route,
                    category=category(case, known),
                    status=status,
                    source=source,
                    refused=refused,
                    f1=0.0 if refused else f1(body, case.body),
                    nearest_url=near.url if near else None,
                    nearest_f1=f1(near.body, case.body) if near else 0.0,
                )
            )
    return cases, len(known)


# --- reporting -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    cases: int
    f1: float
    refusals: int
    nearest_f1: float
    no_nearest: int


def summarize(cases: Sequence[Case]) -> Row:
    n = len(cases)
    if not n:
        return Row(0, 0.0, 0, 0.0, 0)
    return Row(
        cases=n,
        f1=sum(c.f1 for c in cases) / n,
        refusals=sum(c.refused for c in cases),
        nearest_f1=sum(c.nearest_f1 for c in cases) / n,
        no_nearest=sum(c.nearest_url is None for c in cases),
    )


def by(cases: Sequence[Case], key: str) -> dict[str, list[Case]]:
    groups: dict[str, list[Case]] = {}
    for c in cases:
        groups.setdefault(getattr(c, key), []).append(c)
    return groups


def misses(row: Row, name: str) -> list[str]:
    out = []
    aim = AIMS.get(name)
    if aim is not None and row.cases and row.f1 < aim:
        out.append(f"{name} F1 {row.f1:.2f} < {aim:.2f}")
    if name == "overall" and row.cases and row.refusals / row.cases > AIM_REFUSALS:
        out.append(f"refusals {row.refusals / row.cases:.0%} > {AIM_REFUSALS:.0%}")
    return out


HEADER = (
    f"{'':<20} {'cases':>5} {'MockBox F1':>10} {'refusals':>10} {'nearest F1':>10} "
    f"{'no nearest':>10} {'aim':>6}"
)


def line(name: str, row: Row, aim: str = "") -> str:
    refusals = f"{row.refusals} ({row.refusals / row.cases:.0%})" if row.cases else "0"
    return (
        f"{name:<20} {row.cases:>5} {row.f1:>10.2f} {refusals:>10} {row.nearest_f1:>10.2f} "
        f"{row.no_nearest:>10} {aim:>6}"
    )


def category_table(cases: Sequence[Case]) -> Iterator[str]:
    groups = by(cases, "category")
    for cat in CATEGORIES:
        if cat in groups:
            aim = AIMS.get(cat)
            yield line(cat, summarize(groups[cat]), f"{aim:.2f}" if aim else "")
    yield line("all", summarize(cases), f"{AIMS['overall']:.2f}")


def report(run: Run, apis: Sequence[Api], show_cases: bool) -> str:
    public = [c for c in run.cases if c.split == "public"]
    private = [c for c in run.cases if c.split == "private"]
    out = [
        "AI fidelity: answers of `mockbox run --unmatched ai` (offline provider) to held-out "
        "requests,",
        "scored by F1 over typed JSON key paths against the real recorded body; beside them the",
        "baseline 'replay the nearest recording'. Refusals (4xx/5xx, no JSON) score 0.",
        "",
        "per API (public)",
        HEADER,
    ]
    for api in apis:
        if api.split == "public" and api.name in run.known:
            row = summarize([c for c in public if c.api == api.name])
            out.append(line(f"{api.name} ({run.known[api.name]} known)", row))
    out += ["", "per category, public", HEADER, *category_table(public)]
    if private:
        count = sum(a.split == "private" for a in apis)
        out += ["", f"per category, PRIVATE ({count} APIs; aggregate only)", HEADER]
        out += list(category_table(private))
        out += ["", "per category, overall (public + private)", HEADER]
        out += list(category_table(run.cases))
    if show_cases:
        out += ["", "public cases", f"{'category':<10} {'status':>6} {'F1':>5} {'near':>5}  url"]
        for c in public:
            out.append(
                f"{c.category:<10} {c.status:>6} {c.f1:>5.2f} {c.nearest_f1:>5.2f}  {c.url}"
                + ("" if c.source in ("ai", "") else f"  [{c.source}]")
            )
    out += ["", f"{len(run.cases)} cases in {run.seconds:.0f} s"]
    return "\n".join(out)


def as_json(run: Run) -> dict[str, Any]:
    def rows(cases: Sequence[Case]) -> dict[str, Any]:
        groups = by(cases, "category")
        return {
            "all": asdict(summarize(cases)),
            "categories": {cat: asdict(summarize(groups[cat])) for cat in groups},
        }

    public = [c for c in run.cases if c.split == "public"]
    private = [c for c in run.cases if c.split == "private"]
    doc: dict[str, Any] = {
        "seconds": round(run.seconds, 1),
        "public": rows(public),
        "apis": {
            name: asdict(summarize(cs)) | {"known": run.known[name]}
            for name, cs in by(public, "api").items()
        },
        "cases": [asdict(c) for c in public],
    }
    if private:
        doc["private"] = rows(private)
        doc["overall"] = rows(run.cases)
    return doc


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--private", action="store_true", help="also the private split (aggregate)")
    ap.add_argument("--api", action="append", default=[], help="only this API (repeatable)")
    ap.add_argument("--cases", action="store_true", help="list every public case")
    ap.add_argument("--json", action="store_true", help="print JSON instead of tables")
    ap.add_argument("--check", action="store_true", help="exit 1 when a figure misses its aim")
    ap.add_argument("--smoke", action="store_true", help=f"{SMOKE_API}, {SMOKE_CASES} cases")
    ap.add_argument("--keep", action="store_true", help="keep the mock folders (path printed)")
    args = ap.parse_args(argv)

    apis = load_corpus(private=args.private and not args.smoke)
    wanted = [SMOKE_API] if args.smoke else args.api
    if wanted:
        unknown = set(wanted) - {a.name for a in apis}
        if unknown:
            raise SystemExit(f"no such API in this run: {', '.join(sorted(unknown))}")
        apis = [a for a in apis if a.name in wanted]
    limit = SMOKE_CASES if args.smoke else None

    work = Path(tempfile.mkdtemp(prefix="mockbox-ai-fidelity-"))
    run = Run()
    started = time.monotonic()
    try:
        for api in apis:
            cases, known = run_api(api, work, limit)
            run.cases += cases
            run.known[api.name] = known
    finally:
        if args.keep:
            print(f"mocks kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    run.seconds = time.monotonic() - started

    print(json.dumps(as_json(run), indent=1) if args.json else report(run, apis, args.cases))
    if args.check and not args.smoke:
        missed = []
        for name, cases in (("overall", run.cases), *by(run.cases, "category").items()):
            missed += misses(summarize(cases), name)
        if missed:
            print("missed aims: " + "; ".join(missed), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
