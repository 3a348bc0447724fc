"""Small helpers shared by tests (not fixtures)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a CLI subprocess: isolated data dir, no inherited provider keys."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(HANDAI_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT), **extra)
    return env


PYTHON = sys.executable
