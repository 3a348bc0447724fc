"""Small helpers shared by tests (not fixtures)."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a CLI run (a subprocess, or `run_cli`): isolated data dir, no inherited provider keys."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(HANDAI_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT), **extra)
    return env


PYTHON = sys.executable


def wait_until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.02) -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def widget(at: Any, kind: str, key: str) -> Any:
    """The AppTest widget of a kind (`button`, `text_input`…) with this key."""
    return next(w for w in getattr(at, kind) if w.key == key)


def no_exceptions(at: Any) -> None:
    assert not at.exception, [e.value for e in at.exception]


def start_cli(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """`handai_cli.py ARGS` as a process of its own, its output captured as text."""
    return subprocess.Popen(
        [PYTHON, str(ROOT / "handai_cli.py"), *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# -- the command line in this process ------------------------------------------------------------


@dataclass(frozen=True)
class CliResult:
    """What a finished `handai_cli.py` run shows: named as `subprocess.CompletedProcess` names it."""

    returncode: int
    stdout: str
    stderr: str


# Warnings a plain `python handai_cli.py` does not print (Python's default filters).
_SILENT_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


def run_cli(args: Sequence[str], env: Mapping[str, str] | None = None) -> CliResult:
    """`handai_cli.py ARGS` run by `handai_cli.main` in this process, as a fresh process runs it:
    `env` (e.g. from `cli_env`) is the whole environment for the call; stdout and stderr are
    captured (with the warnings and log records a plain interpreter prints there); argparse's exit
    is the exit code. Each call gets its own database and engine, like a new process, and shuts
    them down before returning, so no loop thread or connection outlives it. An exception main
    does not handle is raised here (a real process would print its traceback and exit 1), so a
    test never mistakes a crash for an exit code.

    This saves the 3-7 s of interpreter and import start a subprocess costs; tests about the
    process itself (a kill, two processes at once, control from another process) keep using
    `start_cli` or `subprocess`."""
    import handai_cli

    out, err = io.StringIO(), io.StringIO()
    with _environment(env), _fresh_connections(handai_cli), _captured(out, err):
        try:
            code = handai_cli.main(list(args))
        except SystemExit as exc:  # argparse: --help, a bad or missing flag
            code = _exit_code(exc, err)
    return CliResult(code, out.getvalue(), err.getvalue())


def _exit_code(exc: SystemExit, err: io.StringIO) -> int:
    """The exit code the interpreter gives `SystemExit(code)`; a message is printed to stderr."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=err)
    return 1


@contextmanager
def _environment(env: Mapping[str, str] | None) -> Iterator[None]:
    """`env` as os.environ for the call (None keeps the current one); the old one afterwards."""
    saved = dict(os.environ)
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def _captured(out: io.StringIO, err: io.StringIO) -> Iterator[None]:
    """stdout and stderr into buffers; warnings and log records (from any thread) to stderr as a
    plain interpreter shows them, not to pytest's own collectors."""
    handler = logging.StreamHandler(err)
    handler.setLevel(logging.WARNING)  # logging's last resort: WARNING and up, the message only
    root = logging.getLogger()
    # A record reaches the last resort only when no handler on its way up takes it, as in a plain
    # interpreter: pytest's own root handlers are set aside for the call (a library's NullHandler
    # then silences it here as it does there).
    saved_handlers, saved_last_resort = root.handlers[:], logging.lastResort
    with redirect_stdout(out), redirect_stderr(err), warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        for category in _SILENT_WARNINGS:
            warnings.filterwarnings("ignore", category=category)
        root.handlers = []
        logging.lastResort = handler
        try:
            yield
        finally:
            root.handlers = saved_handlers
            logging.lastResort = saved_last_resort
            for w in caught:
                err.write(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line))


@contextmanager
def _fresh_connections(handai_cli: Any) -> Iterator[None]:
    """main's process-wide `get_db` / `get_engine` swapped for a new Database and Engine of the
    call's own (a new process has no cached ones); both shut down afterwards, and every engine
    thread they started is joined, so a test that leaves one behind fails."""
    from handai_db import Database
    from handai_engine import Engine

    opened: list[Database | Engine] = []

    def new_db() -> Database:
        opened.append(Database())
        return opened[-1]

    def new_engine(db: Database) -> Engine:
        opened.append(Engine(db))
        return opened[-1]

    before = set(threading.enumerate())
    getters = handai_cli.get_db, handai_cli.get_engine
    handai_cli.get_db, handai_cli.get_engine = new_db, new_engine
    try:
        yield
    finally:
        handai_cli.get_db, handai_cli.get_engine = getters
        for thing in reversed(opened):  # the engine before its database
            if isinstance(thing, Engine):
                thing.shutdown()
            else:
                thing.close()
        started = [t for t in threading.enumerate() if t not in before and t.name.startswith("handai-")]
        for thread in started:
            thread.join(10)
        left = [t.name for t in started if t.is_alive()]
        assert not left, f"the CLI left threads running: {left}"
