"""Memory of a long multi-model run: N rows x K arms, created, run and exported, with the peak
resident memory of the process after each phase (issue 11's goal: 1,000,000 rows x 3 arms in
under 1 GB).

    .venv/bin/python -m benchmarks.bench_memory --rows 1000000 --arms 3 [--concurrency 64]
    .venv/bin/python -m benchmarks.bench_memory --rows 50000,200000 --arms 3   # flatness, quicker

Each size runs in a fresh interpreter (peak RSS only grows within a process). The rows are
written to the ledger from a generator (as a script streaming a big file would), the run is sent
to the fake server (its own process, latency 0) through the real engine, and the wide table is
exported to CSV by `write_frames`, streamed from the ledger.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_engine import ROOT, child_env, fake_server

GOAL_MB = 1024.0


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def case(rows: int, arms: int, concurrency: int, url: str, out_dir: str) -> dict[str, Any]:
    """One size, in this process: create, run, export; figures as a dict."""
    from handai_db import Database
    from handai_engine import Engine, RunSettings
    from handai_io import write_frames
    from providers import Connection
    from research.compare import compare_plan
    from research.tools import table_for

    figures: dict[str, Any] = {"rows": rows, "arms": arms, "start_mb": rss_mb()}
    db = Database(f"sqlite:///{out_dir}/bench.db")
    engine = Engine(db)
    conn = Connection("custom", api_key="bench-key", base_url=url)
    models = [("custom", f"fake-{n}") for n in range(arms)]
    plan = compare_plan(models, instruction="Summarise the row in one short sentence.", columns=["id", "text"])
    settings = RunSettings("custom", "fake-0", concurrency=concurrency, use_cache=False)

    def source():
        for i in range(rows):
            yield {"id": i, "text": f"Row {i}: a short review of a product, about as long as a tweet is."}

    t = time.perf_counter()
    run_id = engine.create_plan_run(source(), plan, conn, settings, input_columns=["id", "text"])
    figures.update(create_s=time.perf_counter() - t, after_create_mb=rss_mb(), peak_create_mb=peak_mb())
    t = time.perf_counter()
    engine.start(run_id, conn)
    engine.wait(run_id)
    run_s = time.perf_counter() - t
    progress = engine.progress(run_id)
    figures.update(
        run_s=run_s,
        calls_per_s=progress.succeeded / run_s if run_s else 0.0,
        succeeded=progress.succeeded,
        failed=progress.failed,
        after_run_mb=rss_mb(),
        peak_run_mb=peak_mb(),
    )
    t = time.perf_counter()
    run = db.get_run(run_id)
    write_frames(table_for(run).frames(db, run), Path(out_dir) / "out.csv")
    figures.update(export_s=time.perf_counter() - t, after_export_mb=rss_mb(), peak_mb=peak_mb())
    figures["csv_mb"] = (Path(out_dir) / "out.csv").stat().st_size / 1e6
    engine.shutdown()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000000", help="comma-separated sizes")
    parser.add_argument("--arms", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64, help="per arm")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        spec = json.loads(args.case)
        print(json.dumps(case(**spec)))
        return
    results = []
    with fake_server(0.0) as server:
        for rows in (int(r) for r in args.rows.split(",")):
            with tempfile.TemporaryDirectory() as tmp:
                spec = {"rows": rows, "arms": args.arms, "concurrency": args.concurrency, "url": server.url}
                spec["out_dir"] = tmp
                done = subprocess.run(
                    [sys.executable, "-m", "benchmarks.bench_memory", "--case", json.dumps(spec)],
                    cwd=ROOT,
                    env=child_env(tmp),
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if done.returncode:
                    print(done.stderr[-3000:], file=sys.stderr)
                    continue
                results.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(json.dumps(results[-1]), file=sys.stderr)
                server.reset()  # the server's request log would grow for ever
    head = ["rows x arms", "cells", "create s", "run s", "calls/s", "export s", "peak MB (create / run / export)"]
    print("\n| " + " | ".join([*head, f"goal {GOAL_MB:.0f} MB"]) + " |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    for f in results:
        verdict = "PASS" if f["peak_mb"] < GOAL_MB else "FAIL"
        print(
            f"| {f['rows']:,} x {f['arms']} | {f['succeeded'] + f['failed']:,} | {f['create_s']:.0f} "
            f"| {f['run_s']:.0f} "
            f"| {f['calls_per_s']:.0f} | {f['export_s']:.0f} | {f['peak_create_mb']:.0f} / {f['peak_run_mb']:.0f} / "
            f"{f['peak_mb']:.0f} | {verdict} |"
        )


if __name__ == "__main__":
    main()
