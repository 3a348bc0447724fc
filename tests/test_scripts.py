"""run.sh and test.sh say plainly when the Python they find is too old (scripts/python.sh), before
they create or install anything: tried in a copy of the scripts, on a PATH that holds only a fake
python3 (reporting the version a machine might have) and the two tools the scripts call."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="run.sh and test.sh are bash scripts")

NEED = "Handai needs Python 3.11 or newer"


def fake_python(path: Path, version: str) -> Path:
    """A python that answers `--version` and the scripts' version check as Python `version` would."""
    too_old = tuple(int(part) for part in version.split(".")[:2]) < (3, 11)
    path.write_text(
        "#!/bin/sh\n"
        f'case "$1" in\n  --version) echo "Python {version}" ;;\n  -c) exit {int(too_old)} ;;\n  *) exit 2 ;;\nesac\n'
    )
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def checkout(tmp_path: Path, python3: str | None) -> tuple[Path, dict[str, str]]:
    """The scripts in a folder of their own, and an environment whose PATH has only `python3`
    (reporting this version; None: no python3 at all), `dirname` and `head`."""
    folder = tmp_path / "handai"
    folder.mkdir()
    for script in ("run.sh", "test.sh"):
        shutil.copy(ROOT / script, folder / script)
    shutil.copytree(ROOT / "scripts", folder / "scripts")
    (folder / "requirements.txt").write_text("streamlit\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "head"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    if python3 is not None:
        fake_python(bin_dir / "python3", python3)
    return folder, {"PATH": str(bin_dir), "HOME": str(tmp_path)}


def run(folder: Path, script: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    bash = shutil.which("bash") or "/bin/bash"
    return subprocess.run([bash, str(folder / script)], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("script", ["run.sh", "test.sh"])
def test_a_python_older_than_3_11_is_named_with_what_to_do_and_nothing_is_installed(tmp_path, script):
    folder, env = checkout(tmp_path, python3="3.10.12")
    done = run(folder, script, env)
    assert done.returncode == 1
    message = done.stderr.strip()
    assert message.startswith(f"{NEED} and found none (python3 here: Python 3.10.12). Install one"), message
    assert "set PYTHON=/path/to/python3.11" in message and f"then run {folder / script} again." in message
    assert len(message.splitlines()) == 1 and done.stdout == ""
    assert not (folder / ".venv").exists()


def test_no_python3_at_all_is_said_too(tmp_path):
    folder, env = checkout(tmp_path, python3=None)
    done = run(folder, "run.sh", env)
    assert done.returncode == 1
    assert done.stderr.startswith(f"{NEED} and found none (python3 here: missing)."), done.stderr


def test_an_old_python_named_in_PYTHON_is_not_taken(tmp_path):
    folder, env = checkout(tmp_path, python3=None)
    env["PYTHON"] = str(fake_python(tmp_path / "python3.10", "3.10.4"))
    done = run(folder, "run.sh", env)
    assert done.returncode == 1 and done.stderr.startswith(f"{NEED} and found none"), done.stderr


def test_a_venv_made_with_an_old_python_is_named_with_how_to_rebuild_it(tmp_path):
    folder, env = checkout(tmp_path, python3="3.12.1")
    venv_bin = folder / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    fake_python(venv_bin / "python", "3.10.12")
    done = run(folder, "run.sh", env)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"{NEED}, and .venv was made with Python 3.10.12. Remove it (rm -rf .venv) and run "
        f"{folder / 'run.sh'} again; it will be rebuilt with Python 3.12.1."
    )
    assert sorted(os.listdir(venv_bin)) == ["python"]  # nothing installed into it


def test_a_new_enough_python_passes_the_check(tmp_path):
    """The check itself, sourced as the scripts source it: with Python 3.11 it sets PY and goes on."""
    folder, env = checkout(tmp_path, python3="3.11.9")
    probe = folder / "probe.sh"
    probe.write_text('set -eu\ncd "$(dirname "$0")"\n. scripts/python.sh\necho "PY=$PY"\n')
    done = run(folder, "probe.sh", env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "PY=python3\n" and done.stderr == ""
