"""Settings: beside "Remember on this computer", what the key store protects against and what not;
a provider's card stays open on a key that looks wrong, names a rejected key, and says nothing twice."""

from __future__ import annotations

import re

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from handai_ui.text import md
from providers import KeyStore
from tests.conftest import ROOT


def test_remember_on_this_computer_says_what_the_store_protects(llm):
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "handai_app.py"), default_timeout=30).run()
    at.switch_page("pages/settings.py").run()
    assert not any(b.label == "Remember on this computer" for b in at.button)
    next(w for w in at.text_input if w.key == "set_key_openai").set_value("sk-proj-" + "a" * 40).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(b.label == "Remember on this computer" for b in at.button)
    described = KeyStore().describe()
    assert described and any(md(described) in c.value for c in at.caption)


def settings_page() -> AppTest:
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "handai_app.py"), default_timeout=30).run()
    return at.switch_page("pages/settings.py").run()


def card(at: AppTest, provider: str):
    return next(e for e in at.expander if e.label.startswith(f"{provider} — "))


def sentences(at: AppTest) -> list[str]:
    """Every sentence the main area shows (Markdown escapes dropped)."""
    shown = [
        e.value
        for kind in ("caption", "markdown", "info", "warning", "error", "success")
        for e in getattr(at.main, kind)
    ]
    return [s for text in shown for s in re.split(r"(?<=[.!?])\s+", re.sub(r"\\(.)", r"\1", text)) if s]


def assert_no_sentence_twice(at: AppTest) -> None:
    said = sentences(at)
    assert len(said) == len(set(said)), [s for s in set(said) if said.count(s) > 1]
    links = [link for s in said for link in re.findall(r"https?://\S+", s)]
    assert len(links) == len(set(links)), links


@pytest.mark.parametrize(
    "key",
    [
        "sk-ant-api03-" + "a" * 20 + " " + "b" * 20,  # a space inside
        "sk-ant-…abcd",  # a masked key, copied from a key list
        "sk-ant-api03-" + "ä" * 30,  # characters keys never have
    ],
)
def test_a_key_that_looks_wrong_keeps_its_card_open(llm, key):
    """Anthropic is not the sidebar's provider, so only the key's check can keep its card open;
    Streamlit redraws an expander whose label changed, closed unless told otherwise."""
    at = settings_page()
    assert card(at, "Anthropic").label == "Anthropic — no key" and not card(at, "Anthropic").proto.expanded
    next(w for w in at.text_input if w.key == "set_key_anthropic").set_value(key).run()
    assert not at.exception, [e.value for e in at.exception]
    anthropic = card(at, "Anthropic")
    assert anthropic.label == "Anthropic — key looks wrong"
    assert anthropic.proto.expanded
    assert any("key_off" in c.value for c in anthropic.caption)  # and it says why, inside
    assert_no_sentence_twice(at)


def test_a_rejected_key_is_named_on_the_card(llm, ledger):
    llm.configure(valid_keys=["sk-proj-" + "g" * 40])
    at = settings_page()
    ledger.set_setting("ui.base_url.openai", llm.url)  # OpenAI's base URL is a saved setting, not a box
    at.run()
    next(w for w in at.text_input if w.key == "set_key_openai").set_value("sk-proj-" + "w" * 40).run()
    assert card(at, "OpenAI").label == "OpenAI — ready"
    next(b for b in at.button if b.key == "set_test_openai").click().run()
    assert not at.exception, [e.value for e in at.exception]
    openai = card(at, "OpenAI")
    assert openai.label == "OpenAI — key rejected (401)"
    assert openai.proto.expanded and len(openai.error) == 1
    assert_no_sentence_twice(at)


def test_a_rejected_key_on_a_custom_endpoint_is_named_on_the_card(llm, ledger):
    """A custom server refuses the key on its model list, before any chat call: still "key rejected"."""
    llm.configure(valid_keys=["right-key-0123456789"])
    ledger.set_setting("ui.base_url.custom", llm.url)
    at = settings_page()
    next(w for w in at.text_input if w.key == "set_key_custom").set_value("wrong-key-0123456789").run()
    next(b for b in at.button if b.key == "set_test_custom").click().run()
    assert not at.exception, [e.value for e in at.exception]
    custom = card(at, "Custom (OpenAI-compatible)")
    assert custom.label == "Custom (OpenAI-compatible) — key rejected (401)"
    assert custom.proto.expanded and "wrong-key-0123456789" not in str(custom.error[0].value)
