"""The AI-fidelity benchmark's scorer (bench/ai_fidelity.py): F1 over typed JSON key paths."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from ai_fidelity import f1, key_paths

POKEMON_LIST = {
    "count": 13,
    "next": None,
    "previous": None,
    "results": [
        {"name": "ja-hrkt", "url": "/api/v2/language/1/"},
        {"name": "ko", "url": "/api/v2/language/3/"},
    ],
}
REPO = {"id": 1000, "name": "hello-world", "owner": {"login": "octocat"}, "topics": []}


def test_key_paths_collapse_array_indices_and_pair_each_path_with_its_type() -> None:
    assert key_paths(POKEMON_LIST) == {
        "$:object",
        "count:number",
        "next:null",
        "previous:null",
        "results:array",
        "results[]:object",
        "results[].name:string",
        "results[].url:string",
    }
    assert key_paths([{"a": 1}, {"a": 2, "b": [True]}]) == {
        "$:array",
        "[]:object",
        "[].a:number",
        "[].b:array",
        "[].b[]:boolean",
    }


@pytest.mark.parametrize("body", [POKEMON_LIST, REPO, [REPO, REPO], {}, [], "text", 3])
def test_identical_bodies_score_one(body: object) -> None:
    assert f1(body, body) == 1.0


def test_values_do_not_matter_only_paths_and_types() -> None:
    other = {"id": 7, "name": "spoon-knife", "owner": {"login": "someone"}, "topics": ["x"]}
    # `topics[]:string` is the one path the recording does not have.
    assert f1(other, REPO) == pytest.approx(2 * (6 / 7) * 1 / (6 / 7 + 1))


def test_a_list_instead_of_an_object_scores_low() -> None:
    assert f1([REPO], REPO) == 0.0
    assert f1(REPO, [REPO]) == 0.0
    assert f1(POKEMON_LIST["results"], POKEMON_LIST) < 0.2


def test_a_changed_type_counts_as_a_miss() -> None:
    real = {"id": 1, "name": "x"}
    assert f1({"id": "1", "name": "x"}, real) == pytest.approx(2 / 3)
    assert f1({"id": None, "name": "x"}, real) == pytest.approx(2 / 3)
    assert f1({"id": 1.5, "name": "x"}, real) == 1.0  # JSON has one number type


def test_precision_and_recall_both_count() -> None:
    real = {"a": 1, "b": 2, "c": 3}  # 4 paths with the root
    assert f1({"a": 1}, real) == pytest.approx(2 * 1 * 0.5 / 1.5)  # precise, half the recall
    extra = {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "g": 7}
    assert f1(extra, real) == pytest.approx(2 * 0.5 * 1 / 1.5)  # full recall, half precise
