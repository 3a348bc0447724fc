"""The tools around the app say what they do: the fake server's --help, run.sh's first start."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys

import pytest

from tests import fake_llm_server
from tests.helpers import PYTHON, ROOT


def test_the_fake_servers_help_documents_options_markers_and_endpoints():
    done = subprocess.run(
        [PYTHON, "-m", "tests.fake_llm_server", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    text = done.stdout
    helps = {
        "--port": "port on 127.0.0.1",
        "--latency-ms": "milliseconds every reply waits",
        "--jitter-ms": "random +/- milliseconds",
        "--error-rate": "fraction 0-1 of requests that fail",
        "--rpm": "requests per minute before 429s",
        "--ratelimit-headers": "x-ratelimit-* headers",
        "--valid-key": "accept only this API key",
        "--auth-style": "whose error body a wrong key gets",
    }
    flat = " ".join(text.split())
    for option, words in helps.items():
        assert option in text and words in flat, option
    for marker in ("[[empty]]", "[[error:503]]", "[[flaky:2]]", "[[slow:1.5]]", "[[quota]]", "[[prose]]"):
        assert marker in text, marker
    for endpoint in ("POST /_config", "GET  /_log", "POST /_reset"):
        assert endpoint in text, endpoint
    # One place: the epilog is the module docstring's tables, not a second copy.
    assert fake_llm_server.__doc__.split("Per-request markers", 1)[1].strip() in text


def test_every_marker_the_server_handles_is_documented():
    # The server is split into parts (tests/fake_*.py); the markers are handled in one of them.
    source = "".join(path.read_text(encoding="utf-8") for path in sorted((ROOT / "tests").glob("fake_*.py")))
    handled = set(re.findall(r'"(\w+)" in markers', source))
    assert {"empty", "flaky", "error", "prose", "overloaded"} <= handled
    for name in handled:
        assert f"[[{name}" in fake_llm_server.__doc__, name


def fake_checkout(tmp_path, fresh: bool):
    """run.sh in a folder of its own, with a .venv whose pip and streamlit only record their arguments."""
    shutil.copy(ROOT / "run.sh", tmp_path / "run.sh")
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    (tmp_path / "requirements.txt").write_text("streamlit\n")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    for tool in ("pip", "streamlit"):
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> "$(dirname "$0")/../calls.log"\n')
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    if not fresh:
        (tmp_path / ".venv" / ".installed").touch()
        os.utime(tmp_path / "requirements.txt", (1, 1))
    return tmp_path


def run_script(folder, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(["bash", str(folder / "run.sh"), *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(shutil.which("bash") is None, reason="run.sh is a bash script")
def test_run_sh_says_it_installs_on_the_first_start_and_where_it_serves(tmp_path):
    folder = fake_checkout(tmp_path, fresh=True)
    done = run_script(folder)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "Handai: installing packages into .venv (first start, about a minute)…"
    assert lines[-1].startswith("Handai: serving at http://127.0.0.1:8501 (only this computer;")
    assert "--server.address 0.0.0.0" in lines[-1]
    calls = (folder / ".venv" / "calls.log").read_text().splitlines()
    assert calls[-1] == "streamlit run handai_app.py --server.address 127.0.0.1 --server.port 8501"
    assert any(call.startswith("pip install -q -r requirements.txt") for call in calls)


@pytest.mark.skipif(shutil.which("bash") is None, reason="run.sh is a bash script")
def test_run_sh_says_nothing_of_installing_later_and_names_the_chosen_address(tmp_path):
    folder = fake_checkout(tmp_path, fresh=False)
    done = run_script(folder, "--server.address", "0.0.0.0", "--server.port=8600")
    assert done.returncode == 0, done.stderr
    assert "installing" not in done.stderr
    assert done.stderr.splitlines() == [
        "Handai: serving at http://0.0.0.0:8600 (reachable from your network; Ctrl-C stops it)"
    ]
    calls = (folder / ".venv" / "calls.log").read_text().splitlines()
    assert calls == [
        "streamlit run handai_app.py --server.address 127.0.0.1 --server.port 8501 "
        "--server.address 0.0.0.0 --server.port=8600"
    ]
