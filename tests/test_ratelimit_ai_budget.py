"""The AI tier's daily budget, as shipped: a paid provider's tokens are capped per client address
and in total without any configuration, and a made-up key does not buy a fresh budget."""

from __future__ import annotations

from pathlib import Path

from .conftest import LLMServer, MockBoxFactory
from .test_ai import GOOD, openai_box


def test_ai_spending_has_a_daily_budget_by_default(
    mockbox: MockBoxFactory, tmp_path: Path, llm_server: LLMServer
) -> None:
    llm_server.script = [{"answer": GOOD}]
    llm_server.tokens = (90_000, 30_000)  # a call billed at 120,000 tokens
    box = openai_box(mockbox, tmp_path, llm_server)  # ai.budget as shipped
    assert box.get("http://api.shop.test/users/60").status_code == 200
    assert box.get("http://api.shop.test/users/61").status_code == 200  # 120,000 < 200,000
    for headers in ({}, {"X-API-Key": "made-up"}, {"Authorization": "Bearer also-made-up"}):
        spent = box.get("http://api.shop.test/users/62", headers=headers)
        assert spent.status_code == 429, headers
        assert spent.json()["error"] == "AI_BUDGET_EXCEEDED"
        assert "your daily AI tokens" in spent.json()["message"]
    assert len(llm_server.calls) == 2
