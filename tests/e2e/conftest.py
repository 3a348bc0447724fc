"""Real-browser fixtures: the app started as a user starts it (`streamlit run` in a subprocess,
its own data dir, no API keys) and Debian's chromium driven by Playwright.

Chromium cannot be downloaded here (`playwright install` has no network), so the system one at
/usr/bin/chromium is used. Without it the tests skip, except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

CHROMIUM = Path(os.environ.get("HANDAI_E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
STREAMLIT = ROOT / ".venv" / "bin" / "streamlit"
VIEWPORT = {"width": 1400, "height": 1400}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str) -> None:
    """Skip on a developer machine; fail in CI, where a missing browser is a broken setup."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: the browser tests must run in CI)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StreamlitServer:
    """`streamlit run handai_app.py` in its own process group; start, kill and start again on the
    same port and data dir (a restart after a crash)."""

    def __init__(self, data_dir: Path, log_path: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.endswith("_API_KEY")
            and k not in ("AZURE_OPENAI_ENDPOINT", "HANDAI_DATABASE_URL")
            and not k.startswith(("PYTEST_", "STREAMLIT_"))
        }
        env["HANDAI_DATA_DIR"] = str(self.data_dir)
        env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self, timeout: float = 30.0) -> StreamlitServer:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed with it
        log.write(f"\n===== start #{self.starts} on port {self.port} =====\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            [
                str(STREAMLIT),
                "run",
                "handai_app.py",
                "--server.port",
                str(self.port),
                "--server.headless",
                "true",
                "--server.address",
                "127.0.0.1",
            ],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=1) as resp:
                    if resp.read().decode().strip() == "ok":
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"streamlit did not answer /_stcore/health in {timeout}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL, like a crash or the OOM killer: no shutdown code runs."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        except ProcessLookupError:
            pass

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@pytest.fixture(scope="package")
def _playwright() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    if not CHROMIUM.exists():
        _unavailable(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="package")
def e2e_browser(_playwright: Any) -> Iterator[Any]:
    browser = _playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def new_page(e2e_browser: Any) -> Iterator[Any]:
    """A factory of pages, each in a fresh browser context (like a new browser profile), so a test
    can close one and open another. Uncaught page errors are collected on `page.errors`."""
    contexts: list[Any] = []

    def make() -> Any:
        context = e2e_browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        context.set_default_timeout(20_000)
        contexts.append(context)
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        return page

    yield make
    for context in contexts:
        with contextlib.suppress(Exception):  # already closed by the test, or the browser went away
            context.close()


@pytest.fixture
def app_server(request: pytest.FixtureRequest) -> Iterator[StreamlitServer]:
    """The app, started as a user would, on the data dir the pytest process also points at
    (HANDAI_DATA_DIR from the autouse fixture), so a test can read the ledger directly."""
    data_dir = Path(os.environ["HANDAI_DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / f"streamlit-{request.node.name}.log"
    log_path.unlink(missing_ok=True)
    server = StreamlitServer(data_dir, log_path)
    server.start()
    yield server
    server.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(f"\n--- streamlit log ({log_path}) ---\n{server.log_tail()}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report
