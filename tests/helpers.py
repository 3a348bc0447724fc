"""Small helpers shared by tests (not fixtures)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a CLI subprocess: isolated data dir, no inherited provider keys."""
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
