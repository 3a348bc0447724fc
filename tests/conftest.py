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
