"""Shared fixtures: the fake LLM server over real HTTP, a real ledger and an engine.

The ledger is SQLite; a module marked `pytestmark = pytest.mark.ledger_backends` runs each of its
tests that uses `db` (or `db_url`, `backend`) twice, on SQLite and on a real PostgreSQL server
(tests/postgres_server.py: a throwaway cluster, or HANDAI_TEST_POSTGRES_URL), each test on a fresh
database of its own. Without PostgreSQL's binaries those runs are skipped, except under CI=true,
where they fail."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_llm_server import FakeLLMServer
from tests.postgres_server import PostgresServer, binaries

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ledger_backends: run the test's ledger on SQLite and on PostgreSQL")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("ledger_backends") and "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", BACKENDS, indirect=True)


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


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server: HANDAI_TEST_POSTGRES_URL's, else a throwaway cluster."""
    if url := os.environ.get("HANDAI_TEST_POSTGRES_URL"):
        server = PostgresServer(url)
    elif binaries() is None:
        message = "PostgreSQL is not installed (apt-get install postgresql) and HANDAI_TEST_POSTGRES_URL is not set"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    else:
        server = PostgresServer.start()
    yield server
    server.stop()


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The ledger's backend: "sqlite" unless the module is marked `ledger_backends`."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty database's URL on this test's backend."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    url = server.new_database()
    yield url
    server.drop_database(url)


@pytest.fixture
def db(db_url: str):
    from handai_db import Database

    database = Database(db_url)
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
