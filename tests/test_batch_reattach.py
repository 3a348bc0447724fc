"""Issue 14's done-when, scaled for speed: a 10,000-row transform submitted as batches, the owning
process killed (SIGKILL) while it polls, and a new process that re-attaches and completes it with
every row's own answer, submitting nothing twice (the fake server's batch log says so)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from handai_db import Database, RowStatus
from tests.helpers import ROOT, cli_env, wait_until

KEY = "sk-test-" + "a" * 40
ROWS = 10_000

DRIVER = textwrap.dedent(
    """
    import sys
    import pandas as pd
    from handai_db import Database
    from handai_engine import Engine, RunSettings
    from providers import Connection

    db_url, base_url, key, action = sys.argv[1:5]
    engine = Engine(Database(db_url))
    conn = Connection("openai", api_key=key, base_url=base_url)
    if action == "submit":
        df = pd.DataFrame({"text": [f"row {i}" for i in range(int(sys.argv[5]))]})
        settings = RunSettings(provider="openai", model="gpt-4o-mini", system_prompt="Tag it.", columns=["text"])
        run_id = engine.create_transform_run(df, settings, conn, input_name="big.csv", batch=True)
        engine.start(run_id, conn)
    else:
        [run_id] = engine.reattach_batches({"openai": conn})
    print(engine.wait(run_id).status, flush=True)
    engine.shutdown()
    """
)


def driver(tmp_path: Path, db_url: str, base_url: str, *args: str) -> subprocess.Popen:
    env = cli_env(tmp_path / "data", HANDAI_BATCH_POLL_SECONDS="0.05", HANDAI_BATCH_MAX_REQUESTS="4000")
    script = [sys.executable, "-c", DRIVER, db_url, base_url, KEY, *args]
    return subprocess.Popen(script, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_killed_batch_run_is_re_attached_by_a_new_process_and_nothing_is_sent_twice(tmp_path, llm):
    batches = llm.llm.batches
    batches.configure(in_progress_s=2.0)  # long enough to kill the first process while it polls
    db_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    first = driver(tmp_path, db_url, llm.url, "submit", str(ROWS))
    db = Database(db_url)
    try:
        polled: list[str] = []
        batches.on_retrieve = polled.append
        wait_until(lambda: len(polled) >= 3, 60, "the first process to poll its three batches")
        run = db.list_runs()[0]
        recorded = [b.batch_id for b in db.run_batches(run.id)]
        assert recorded == [e.id for e in batches.created()] and len(recorded) == 3
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert db.run_counts(run.id).pending == ROWS, "results landed before the kill: the test proves less"

        second = driver(tmp_path, db_url, llm.url, "reattach")
        out, err = second.communicate(timeout=90)
        assert second.returncode == 0, err
        assert out.strip() == "completed"

        assert len(batches.created()) == 3, "a batch was submitted twice"
        assert len([e for e in batches.log if e.action == "file.create"]) == 3
        answered = [e.detail for e in batches.log if e.action == "line"]
        assert len(answered) == ROWS == len(set(answered))
        assert llm.requests() == []
        counts = db.run_counts(run.id)
        assert (counts.succeeded, counts.failed, counts.pending) == (ROWS, 0, 0)
        for r in db.results(run.id):
            user = json.dumps({"text": f"row {r.row_index}"})
            assert (r.status, r.request, r.raw) == (RowStatus.SUCCEEDED, user, f"Reply to: {user}")
    finally:
        if first.poll() is None:
            first.kill()
        db.close()
