"""A team on one PostgreSQL database (issue 14's "done when"): two app processes and a CLI process,
real subprocesses started together on a new, empty database, each running its own run against the
fake LLM server. A pause from another process (this one) halts a run, a killed owner's run is
recovered by a third app process, and in the end no row is lost or doubled, by the ledger and by the
server's log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from handai_db import MIGRATIONS, Database, RunStatus
from handai_engine import Engine
from tests.helpers import PYTHON, ROOT, cli_env, start_cli, wait_until

# What an app process does with its engine: start a new run on a file's rows and see it end, or
# (as an app does on start-up) recover runs whose process is gone and resume the runs it is given.
APP = """
import json, sys
import pandas as pd
from handai_db import Database
from handai_engine import Engine, RunSettings
from providers import Connection

db_url, base_url, mode, arg, concurrency = sys.argv[1:6]
db = Database(db_url)
engine = Engine(db)
conn = Connection("custom", api_key="k", base_url=base_url)
if mode == "new":
    rows = pd.DataFrame(json.load(open(arg)))
    run_ids = [engine.create_transform_run(rows, RunSettings("custom", "m", concurrency=int(concurrency)), conn)]
    engine.start(run_ids[0], conn)
else:
    db.mark_interrupted_runs()
    run_ids = [int(r) for r in arg.split(",")]
    for run_id in run_ids:
        engine.resume(run_id, conn)
print(json.dumps({run_id: str(engine.wait(run_id, 120).status) for run_id in run_ids}), flush=True)
engine.shutdown()
"""


def rows(prefix: str, n: int) -> pd.DataFrame:
    return pd.DataFrame({"text": [f"{prefix} {i}" for i in range(n)]})


def start_app(tmp_path: Path, db_url: str, llm_url: str, mode: str, arg: str, concurrency: int = 4) -> subprocess.Popen:
    script = tmp_path / "app.py"
    script.write_text(APP)
    return subprocess.Popen(
        [PYTHON, str(script), db_url, llm_url, mode, arg, str(concurrency)],
        env=cli_env(tmp_path / f"app-{mode}-data"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def of_run(user: str, prefix: str) -> bool:
    """Whether a request's user message is a row of the run whose rows are named `prefix …`."""
    try:
        return json.loads(user)["text"].startswith(prefix + " ")
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


def sent(llm, prefix: str) -> Counter:
    """How often the server answered each row of one run (rows are named by their run's prefix)."""
    return Counter(json.loads(r.user)["text"] for r in llm.requests() if r.status == 200 and of_run(r.user, prefix))


def run_of(db: Database, prefix: str) -> int | None:
    for run in db.list_runs():
        first = db.result(run.id, 0)
        if first is not None and first.input.get("text", "").startswith(prefix + " "):
            return run.id
    return None


def answered(db: Database, run_id: int) -> set[str]:
    return {r.input["text"] for r in db.results(run_id) if r.status == "succeeded"}


def test_two_apps_and_a_cli_share_one_database_without_losing_or_doubling_a_row(postgres, llm, tmp_path):
    llm.configure(latency_ms=40)
    url = postgres.new_database()  # empty: the three processes race to create the schema
    n_a, n_b, n_c = 160, 240, 120
    for prefix, n in (("A", n_a), ("B", n_b)):
        (tmp_path / f"{prefix}.json").write_text(json.dumps(rows(prefix, n).to_dict(orient="list")))
    rows("C", n_c).to_csv(tmp_path / "C.csv", index=False)
    env = cli_env(tmp_path / "cli-data", HANDAI_DATABASE_URL=url, HANDAI_CUSTOM_API_KEY="k")
    transform = ["transform", str(tmp_path / "C.csv"), "--prompt", "Echo", "--provider", "custom", "--model", "m"]

    app1 = start_app(tmp_path, url, llm.url, "new", str(tmp_path / "A.json"), concurrency=2)
    app2 = start_app(tmp_path, url, llm.url, "new", str(tmp_path / "B.json"))
    transform += ["--base-url", llm.url, "--concurrency", "4", "--output", str(tmp_path / "C.out.csv")]
    cli = start_cli(transform, env)
    db = Database(url)
    controller = Engine(db)
    try:
        run_a = wait_until(lambda: run_of(db, "A"), 60, "app 1's run")
        run_b = wait_until(lambda: run_of(db, "B"), 60, "app 2's run")

        # App 2 dies mid-run (no clean-up at all) …
        wait_until(lambda: db.run_counts(run_b).succeeded >= 30, 60, "30 rows of B")
        os.kill(app2.pid, signal.SIGKILL)
        app2.communicate(timeout=10)
        # the calls app 2 had in flight reach the server's log (app 1 and the CLI keep calling)
        wait_until(lambda: llm.in_flight(lambda r: of_run(r.user, "B")) == 0, 10, "app 2's calls in flight")
        # running, or already marked interrupted by a live process that saw its owner's pid gone
        assert db.get_run(run_b).status in (RunStatus.RUNNING, RunStatus.INTERRUPTED)
        assert db.run_counts(run_b).pending > 0, "killed too late to prove anything"
        done_at_kill = answered(db, run_b)
        unrecorded = set(sent(llm, "B")) - done_at_kill

        # … and this process, another app as far as app 1 knows, pauses app 1's run.
        wait_until(lambda: db.run_counts(run_a).succeeded >= 20, 60, "20 rows of A")
        assert controller.pause(run_a)
        out, err = app1.communicate(timeout=60)
        assert app1.returncode == 0 and json.loads(out) == {str(run_a): "paused"}, err
        a = db.get_run(run_a)
        counts = db.run_counts(run_a)
        assert a.status == RunStatus.PAUSED and counts.succeeded > 0 and counts.pending > 0, "paused too late"
        assert a.calls == sum(sent(llm, "A").values())  # every call app 1 made is in the ledger, once
        assert answered(db, run_a) == set(sent(llm, "A"))  # and every reply it received was recorded

        out, err = cli.communicate(timeout=120)
        assert cli.returncode == 0, err

        # A third app process recovers app 2's run and resumes both.
        app3 = start_app(tmp_path, url, llm.url, "resume", f"{run_a},{run_b}")
        out, err = app3.communicate(timeout=120)
        assert app3.returncode == 0, err
        assert json.loads(out) == {str(run_a): "completed", str(run_b): "completed"}

        run_c = run_of(db, "C")
        for run_id, prefix, n in ((run_a, "A", n_a), (run_b, "B", n_b), (run_c, "C", n_c)):
            cells = db.results(run_id)
            assert sorted(c.row_index for c in cells) == list(range(n)), prefix  # no row lost, none doubled
            assert all(c.status == "succeeded" for c in cells), prefix
            assert all(c.input["text"] in c.raw for c in cells), prefix  # each row holds its own answer
            run = db.get_run(run_id)
            assert (run.status, run.succeeded, run.total_rows) == (RunStatus.COMPLETED, n, n), prefix
        assert set(sent(llm, "A").values()) == {1} and len(sent(llm, "A")) == n_a  # the pause resent nothing
        assert set(sent(llm, "C").values()) == {1} and len(sent(llm, "C")) == n_c
        sent_b = sent(llm, "B")
        assert len(sent_b) == n_b
        twice = {text for text, count in sent_b.items() if count > 1}
        assert not twice & done_at_kill, "a row recorded before the kill was sent again"
        # resent: only what a SIGKILL loses, the calls in flight and the replies not yet written
        assert twice <= unrecorded and len(unrecorded) <= 5 * 4
        with db.engine.connect() as conn:
            names = [r[0] for r in conn.exec_driver_sql("SELECT name FROM migrations")]
        assert sorted(names) == sorted(name for name, _ in MIGRATIONS)  # migrated once, by one of them
    finally:
        for proc in (app1, app2, cli):
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
        controller.shutdown()
        db.close()


def test_the_password_is_never_shown(postgres, tmp_path):
    url = postgres.new_database()
    password = postgres.password
    if not password:
        pytest.skip("the server at HANDAI_TEST_POSTGRES_URL takes no password")
    db = Database(url.replace("postgresql://", "postgres://"))  # as hosting services write it
    try:
        assert db.create_run([{"a": 1}], provider="custom", model="m") == 1
        assert password not in db.display_url + repr(db) and ":***@" in db.display_url
    finally:
        db.close()
    wrong = url.replace(password, "Wrong-Pass-0815")
    refused = subprocess.run(
        [PYTHON, str(ROOT / "handai_cli.py"), "runs", "list"],
        env=cli_env(tmp_path, HANDAI_DATABASE_URL=wrong),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0
    assert "Wrong-Pass-0815" not in refused.stdout + refused.stderr
    assert "password authentication failed" in refused.stderr and ":***@" in refused.stderr


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://ann:s3cr%40t@db.lab:5432/handai", "postgresql://ann:***@db.lab:5432/handai"),
        ("postgres://ann:pw@db.lab/handai?sslmode=require", "postgres://ann:***@db.lab/handai?sslmode=require"),
        ("postgresql://db.lab/handai?user=ann&password=pw", "postgresql://db.lab/handai?user=ann&password=***"),
        ("postgresql://ann@db.lab/handai", "postgresql://ann@db.lab/handai"),
        ("sqlite:////home/ann/.handai/handai.db", "sqlite:////home/ann/.handai/handai.db"),
        ("not a url pw", "(not a database URL)"),
    ],
)
def test_a_database_url_is_shown_without_its_password(url, shown):
    from handai_db import masked_url

    assert masked_url(url) == shown
