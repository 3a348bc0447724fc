"""`--batch` and `--no-wait` for the run commands: send the rows through the provider's Batch API
(about half the price, results within 24 h), print the batch ids, then wait and collect, or return
at once and let `runs resume ID` collect later."""

from __future__ import annotations

import argparse
import sys

from handai_engine import Engine
from handai_engine.batch import BatchState, summary

SUBMIT_TIMEOUT = 3600.0  # uploading many 200 MB files takes a while


def add_batch_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--batch",
        action="store_true",
        help="send the rows through the provider's Batch API (OpenAI, Azure OpenAI, Anthropic): about half the price, "
        "results within 24 h",
    )
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="with --batch: return once the batches are submitted; `runs resume ID` collects the results later",
    )


def submitted(engine: Engine, run_id: int, *, wait: bool) -> int | None:
    """After `engine.start` of a batch run: print its batch ids once submitted. Without `wait`, let
    the run go (the batches go on at the provider) and return 0; else, or when the job has already
    ended (done, or failed to submit), None: the caller follows the run to its end as usual."""
    engine.wait_submitted(run_id, SUBMIT_TIMEOUT)
    for state in engine.batches(run_id):
        if state.batch_id:
            print(f"run {run_id}: batch {state.batch_id} ({state.requests} requests) {state.state}")
    if wait or not engine.is_running(run_id):
        return None
    engine.detach(run_id)
    engine.wait(run_id, 60)
    print(f"Collect the results with: python handai_cli.py runs resume {run_id}", file=sys.stderr)
    return 0


def batch_column(states: list[BatchState]) -> str:
    """`runs list`'s note for a run sent as batches."""
    return f"  batches: {summary(states)}" if states else ""
