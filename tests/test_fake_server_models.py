"""The fake server's models disagree deterministically (Compare / Consensus / Pipeline tests rely
on it), seen through the real `openai` client."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.fake_llm_server import DEFAULT_MODELS, FakeLLMServer, disagrees, odd_third

LABELS = ["positive", "negative", "neutral"]
SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "reply",
        "schema": {
            "type": "object",
            "properties": {"sentiment": {"type": "string", "enum": LABELS}, "note": {"type": "string"}},
        },
    },
}
ROWS = [f"review number {i}: {'great' if i % 2 else 'meh'}" for i in range(30)]


@pytest.fixture
def client(llm: FakeLLMServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=llm.url, api_key="sk-test", max_retries=0)


def ask(client: openai.OpenAI, model: str, user: str, response_format: dict[str, Any] | None = None) -> str:
    extra: dict[str, Any] = {"response_format": response_format} if response_format else {}
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": user}], **extra)
    return reply.choices[0].message.content or ""


def label(client: openai.OpenAI, model: str, user: str) -> str:
    return json.loads(ask(client, model, user, SCHEMA))["sentiment"]


def test_the_new_models_are_listed(client):
    listed = [m.id for m in client.models.list()]
    assert listed == DEFAULT_MODELS and {"fake-alt", "fake-contrarian"} <= set(listed)


def test_other_models_keep_the_baseline_enum_value(client):
    for model in ("fake-small", "fake-large", "gpt-4o-mini"):
        assert [label(client, model, u) for u in ROWS] == [LABELS[len(u) % 3] for u in ROWS]


def test_alt_disagrees_with_small_on_the_odd_third_only(client):
    odd = [u for u in ROWS if odd_third(u)]
    assert 0.15 * len(ROWS) <= len(odd) <= 0.55 * len(ROWS)  # about a third, and both kinds present
    for user in ROWS:
        small, alt = label(client, "fake-small", user), label(client, "fake-alt", user)
        assert (small != alt) == odd_third(user) == disagrees("fake-alt", user), user
        assert alt == LABELS[(len(user) + odd_third(user)) % 3]
        assert label(client, "fake-alt", user) == alt  # deterministic


def test_contrarian_always_disagrees_with_small(client):
    for user in ROWS:
        assert label(client, "fake-contrarian", user) != label(client, "fake-small", user)
        assert label(client, "fake-contrarian", user) == LABELS[(len(user) + 1) % 3]


def test_string_fields_follow_the_same_rule(client):
    for user in ROWS[:9]:
        note = json.loads(ask(client, "fake-alt", user, SCHEMA))["note"]
        assert note == (f"note (alt) of {user}" if odd_third(user) else f"note of {user}")
        assert json.loads(ask(client, "fake-small", user, SCHEMA))["note"] == f"note of {user}"


def test_text_replies_agree_except_on_the_odd_third(client):
    for user in ROWS:
        assert ask(client, "fake-small", user) == f"Reply to: {user}"
        alt = ask(client, "fake-alt", user)
        assert alt == (f"Alt reply to: {user}" if odd_third(user) else f"Reply to: {user}")
        assert ask(client, "fake-contrarian", user) == f"Contrary reply to: {user}"


def test_a_pick_marker_forces_one_models_answer(client):
    user = "meh [[pick:fake-alt=negative]]"
    assert label(client, "fake-alt", user) == "negative"
    assert label(client, "fake-small", user) == LABELS[len(user) % 3]
    assert ask(client, "fake-alt", user) == "negative"
    assert ask(client, "fake-small", user) == f"Reply to: {user}"
    both = "ok [[pick:neutral]]"
    assert {label(client, m, both) for m in ("fake-small", "fake-contrarian")} == {"neutral"}


def test_fixed_answers_per_model(client, llm):
    llm.configure(answers={"fake-large": "always this", "fake-alt": '{"sentiment": "neutral"}'})
    assert ask(client, "fake-large", "anything") == "always this"
    assert json.loads(ask(client, "fake-alt", "anything", SCHEMA)) == {"sentiment": "neutral"}
    assert ask(client, "fake-small", "anything") == "Reply to: anything"
    llm.reset()
    assert ask(client, "fake-large", "anything") == "Reply to: anything"
