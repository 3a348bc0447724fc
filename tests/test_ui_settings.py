"""Settings: beside "Remember on this computer", what the key store protects against and what not."""

from __future__ import annotations

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
