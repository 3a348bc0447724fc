"""`runs`: list the ledger's runs; resume, retry the failed cells of, stop, pause or export one."""

from __future__ import annotations

import argparse
from typing import Any

from handai_db import Database, Run, RunFilter
from handai_engine import Engine, Plan
from providers import Connection

from .common import CliError, add_guard_option, check_output, connection, finish, rows, write


def cmd_runs(args: argparse.Namespace, db: Database, engine: Engine) -> int:
    if args.runs_command == "list":
        for run in db.list_runs(RunFilter(limit=args.limit)):
            print(
                f"{run.id:>6}  {run.created_at:%Y-%m-%d %H:%M}  {run.status:<11} {run.kind:<9} "
                f"{run.provider}/{run.model}  {run.succeeded}/{run.total_rows} ok  {run.failed} failed  "
                f"{run.input_name[:40]}"
            )
        return 0
    run = db.get_run(args.run_id)
    if run is None:
        raise CliError(f"No run {args.run_id}. See `python handai_cli.py runs list`.")
    if args.runs_command in ("stop", "pause"):
        stop = args.runs_command == "stop"
        if not (engine.stop if stop else engine.pause)(run.id):
            done = "stopped" if stop else "paused"
            raise CliError(f"Run {run.id} is {run.status}; it cannot be {done} now.")
        print(f"run {run.id}: {db.get_run(run.id).status}; the process running it halts within a second")
        return 0
    if args.runs_command == "export":
        output = check_output(args.output)
        write(db, run.id, output, args.csv_formula_guard)
        print(f"Wrote {rows(run)} rows to {output}")
        return 0
    output = check_output(args.output) if args.output else None
    changes = {
        key: value
        for key, value in (
            ("budget_usd", args.budget),
            ("model", args.model),
            ("base_url", args.base_url),
            ("system_prompt", args.prompt),
            ("concurrency", args.concurrency),
        )
        if value is not None
    }
    arm_models = dict(spec.split("=", 1) for spec in args.arm_model or [] if "=" in spec)
    if len(arm_models) != len(args.arm_model or []):
        raise CliError("--arm-model takes NAME=MODEL, e.g. --arm-model gpt-4o-mini=gpt-4o.")
    if arm_models:
        changes["arms"] = {name: {"model": model} for name, model in arm_models.items()}
    if changes:  # recorded on the run and in its log before anything is sent
        engine.update_settings(run.id, **changes)
        run = db.get_run(run.id)
    conn = _run_connections(run)
    if args.runs_command == "resume":
        engine.resume(run.id, conn)
    else:
        engine.retry_failed(run.id, conn)
    where = conn.effective_base_url() if isinstance(conn, Connection) else ", ".join(conn)
    print(f"run {run.id}: {args.runs_command} with {run.provider} / {run.model} at {where}")
    return finish(db, engine, run.id, output, args.csv_formula_guard)


def _run_connections(run: Run) -> Connection | dict[str, Connection]:
    """Today's keys for a recorded run: its own endpoint for one model; for several, one
    connection per provider (the engine sends each model to the endpoint its arm recorded)."""
    if not run.plan:
        return connection(argparse.Namespace(provider=run.provider), run.connection)
    arms = Plan.of(run).arms
    return {a.provider: connection(argparse.Namespace(provider=a.provider), a.endpoint) for a in reversed(arms)}


def add_parser(sub: Any) -> None:
    r = sub.add_parser("runs", help="list, resume, retry or export runs")
    rs = r.add_subparsers(dest="runs_command", required=True)
    rl = rs.add_parser("list")
    rl.add_argument("--limit", type=int, default=50)
    for name in ("resume", "retry-failed"):
        rr = rs.add_parser(name)
        rr.add_argument("run_id", type=int)
        rr.add_argument("--output", "-o")
        add_guard_option(rr)
        rr.add_argument("--budget", type=float, help="raise (or set) the run's budget cap in USD")
        rr.add_argument("--model", help="send the remaining rows to this model instead (recorded)")
        rr.add_argument("--base-url", help="send them to this endpoint instead, e.g. after a wrong URL (recorded)")
        rr.add_argument("--prompt", help="a changed instruction for the remaining rows (recorded)")
        rr.add_argument("--concurrency", type=int, help="calls in flight at once")
        rr.add_argument(
            "--arm-model",
            action="append",
            metavar="NAME=MODEL",
            help="a run of several models: send NAME's cells to MODEL instead (recorded; repeat)",
        )
    for name, what in (("stop", "stop a run, whichever process runs it"), ("pause", "pause a run (resumable)")):
        rc = rs.add_parser(name, help=what)
        rc.add_argument("run_id", type=int)
    re_ = rs.add_parser("export")
    re_.add_argument("run_id", type=int)
    re_.add_argument("--output", "-o", required=True)
    add_guard_option(re_)
