"""Keys: the lookup order, the encrypted store, every provider's auth failure shape, and a byte
search for the key in everything Handai writes or shows."""

from __future__ import annotations

import json
import os
import stat
import time

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from handai_db import Database, default_url
from handai_errors import ErrorKind
from handai_io import EXPORT_FORMATS, export_bytes
from providers import Connection, KeyStore, probe, resolve_key
from tests.conftest import ROOT

KEY = "sk-proj-TOPSECRETtopsecret0123456789abcd"


def file_store(folder) -> KeyStore:
    """The store without the system keyring, so no test writes to the developer's Keychain."""
    return KeyStore(folder, use_keyring=False)


def test_lookup_order_session_then_secrets_then_environment_then_store(tmp_path):
    store = file_store(tmp_path)
    store.set("openai", "sk-store-key-000000000000000000")
    env = {"OPENAI_API_KEY": "sk-env-key-0000000000000000000"}
    secrets = {"OPENAI_API_KEY": "sk-secret-key-0000000000000000"}
    typed = {"openai": "  'sk-typed-key-00000000000000000'\n"}
    assert resolve_key("openai", typed=typed, secrets=secrets, env=env, store=store).source == "session"
    assert resolve_key("openai", typed=typed, secrets=secrets, env=env, store=store).key == (
        "sk-typed-key-00000000000000000"
    )
    assert resolve_key("openai", secrets=secrets, env=env, store=store).source == "secrets"
    assert resolve_key("openai", env=env, store=store).source == "environment"
    assert resolve_key("openai", env={}, store=store).key == "sk-store-key-000000000000000000"
    assert resolve_key("openai", env={}, store=file_store(tmp_path / "empty")).key is None


def test_one_providers_key_is_never_used_for_another(tmp_path):
    env = {"OPENAI_API_KEY": "sk-env-key-0000000000000000000"}
    typed = {"openai": "sk-typed-key-00000000000000000"}
    found = resolve_key("openrouter", typed=typed, env=env, store=file_store(tmp_path))
    assert found.key is None


def test_file_store_is_encrypted_and_readable_only_by_the_user(tmp_path):
    """The store on a machine without a keyring; tests/test_key_store.py covers the keyring."""
    store = file_store(tmp_path)
    store.set("openrouter", KEY)
    assert KEY.encode() not in store.data_path.read_bytes()
    assert KEY.encode() not in store.secret_path.read_bytes()
    assert stat.S_IMODE(os.stat(store.secret_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.data_path).st_mode) == 0o600
    assert file_store(tmp_path).get("openrouter") == KEY
    store.forget("openrouter")
    assert file_store(tmp_path).get("openrouter") is None


@pytest.mark.parametrize(
    "provider, style, expected",
    [
        ("openai", "openai", "OpenAI did not accept this API key"),
        ("openrouter", "openrouter", "OpenRouter did not accept this API key"),
        ("anthropic", "anthropic", "Anthropic did not accept this API key"),
        ("google", "gemini", "Google Gemini did not accept this API key"),
        ("groq", "groq", "Groq did not accept this API key"),
        ("together", "openai", "Together AI did not accept this API key"),
        ("azure", "azure", "Azure OpenAI did not accept this API key"),
        ("custom", "openai", "did not accept this API key"),
    ],
)
def test_each_providers_auth_failure_shape_reads_plainly(llm, provider, style, expected):
    llm.configure(valid_keys=["the-right-key-1234567890"], auth_style=style)
    conn = Connection(
        provider,
        api_key=KEY,
        base_url=llm.root if provider == "azure" else llm.url,
        deployment="dep" if provider == "azure" else None,
    )
    result = probe.test_connection(conn, "fake-small")
    assert not result.ok and result.error.kind == ErrorKind.INVALID_KEY
    assert expected in result.message
    assert KEY not in result.message and KEY[8:] not in result.message


def test_openrouter_cookie_body_becomes_plain_words_with_the_key_hint(llm):
    llm.configure(valid_keys=["sk-or-v1-right"], auth_style="openrouter")
    result = probe.test_connection(Connection("openrouter", api_key=KEY, base_url=llm.url), "m")
    assert "OpenRouter did not accept this API key" in result.message
    assert "This looks like an OpenAI key; OpenRouter keys start with sk-or-" in result.message
    assert "cookie" not in result.message.lower()
    assert len(llm.requests()) == 1


def _all_text(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "code", "json", "text", "title"):
        parts += [str(e.value) for e in getattr(at, kind)]
    parts += [str(e.placeholder) for e in at.text_input]
    parts += [d.value.to_csv() for d in at.dataframe]
    return "\n".join(parts)


def test_a_typed_key_appears_nowhere_handai_writes_or_shows(llm, tmp_path):
    llm.configure(valid_keys=[KEY, "bad"], auth_style="openai")
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "handai_app.py"), default_timeout=30).run()
    next(w for w in at.selectbox if w.key == "handai_provider").set_value("custom").run()
    next(w for w in at.text_input if w.key == "handai_base_url_custom").set_value(llm.url).run()
    next(w for w in at.text_input if w.key == "handai_key_custom").set_value(KEY).run()
    assert next(w for w in at.text_input if w.key == "handai_key_custom").value == ""  # write-only box
    assert any("sk-proj-…abcd (typed in this browser session)" in c.value for c in at.sidebar.caption)
    next(w for w in at.selectbox if w.key == "handai_model_pick_custom").set_value("fake-small").run()
    csv = b"id,text\n1,hello\n2,world\n"
    at.file_uploader[0].set_value(("in.csv", csv, "text/csv")).run()
    next(w for w in at.text_area if w.key == "tf_prompt").set_value("Echo.").run()
    next(w for w in at.button if w.key == "tf_full").click().run()
    run_id = int(at.query_params["run"])
    db = Database(default_url())
    deadline = time.monotonic() + 30
    while db.get_run(run_id).status in ("queued", "running"):
        assert time.monotonic() < deadline, f"run {run_id} still {db.get_run(run_id).status} after 30 s"
        time.sleep(0.05)
    at.run()
    assert "ai_output" in _all_text(at)
    assert KEY not in _all_text(at)
    frame = db.results_frame(run_id)
    assert frame["ai_status"].tolist() == ["succeeded", "succeeded"]
    for fmt in EXPORT_FORMATS:
        assert KEY.encode() not in export_bytes(frame, fmt), fmt
    session = json.dumps(db.export_session(db.get_run(run_id).session_id))
    assert KEY not in session
    db.close()
    data_dir = tmp_path / "handai-data"
    blobs = [p.read_bytes() for p in data_dir.rglob("*") if p.is_file() and not p.name.startswith("keys.")]
    assert blobs and not [b for b in blobs if KEY.encode() in b or KEY[8:].encode() in b]


def test_keys_in_error_text_are_masked_in_ledger_messages(engine, db, llm):
    llm.configure(valid_keys=["x"], auth_style="openai")
    conn = Connection("openai", api_key=KEY, base_url=llm.url)
    from handai_engine import RunSettings

    run_id = engine.create_transform_run(pd.DataFrame({"t": ["a", "b", "c"]}), RunSettings("openai", "m"), conn)
    engine.start(run_id, conn)
    engine.wait(run_id, 30)
    assert db.get_run(run_id).status not in ("queued", "running"), "the run did not finish within 30 s"
    text = json.dumps(db.export_run(run_id))
    assert "did not accept" in text and KEY not in text and "TOPSECRET" not in text
