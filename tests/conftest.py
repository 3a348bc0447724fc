"""Shared fixtures: the fake LLM server over real HTTP, a real SQLite ledger, and an engine."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_llm_server import FakeLLMServer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's ~/.handai, real keys or real provider settings."""
    monkeypatch.setenv("HANDAI_DATA_DIR", str(tmp_path / "handai-data"))
    monkeypatch.delenv("HANDAI_DATABASE_URL", raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")  # never the user's keyring
    for name in list(os.environ):
        if name.endswith("_API_KEY") or name in ("AZURE_OPENAI_ENDPOINT",):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def llm_server() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer().start()
    yield server
    server.stop()


@pytest.fixture
def llm(llm_server: FakeLLMServer) -> FakeLLMServer:
    """The session's server with a clean log and default behaviour for this test."""
    llm_server.reset()
    return llm_server


@pytest.fixture
def db(tmp_path: Path):
    from handai_db import Database

    database = Database(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield database
    database.close()


@pytest.fixture
def engine(db):
    from handai_engine import Engine

    eng = Engine(db)
    yield eng
    eng.shutdown()


@pytest.fixture
def app(llm):
    """The whole app in Streamlit's AppTest, first run done, with fresh caches (the fake server
    is up for pages that call it)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "handai_app.py"), default_timeout=30)
    at.run()
    return at


@pytest.fixture
def ledger():
    """The database the app uses (HANDAI_DATA_DIR is this test's own folder)."""
    from handai_db import Database, default_url

    db = Database(default_url())
    yield db
    db.close()
