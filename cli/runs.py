"""`runs`: list the ledger's runs; resume, retry the failed cells of, stop, pause or export one (as a
table or a methods bundle); repeat a run from its bundle."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from handai_db import Database, Run, RunFilter
from handai_engine import Engine, Plan
from handai_engine.batch import is_batch
from handai_io import content_hash
from handai_io.bundle import unzip_bundle
from providers import Connection
from research.methods import PROVENANCE, RESULTS, ROWS, methods_bundle
from research.rerun import (
    Bundle,
    CannotRepeat,
    NotABundle,
    Repeat,
    compare_answers,
    create_repeat,
    input_file_change,
    plan_repeat,
    read_bundle,
    recorded_differences,
)

from .batch import batch_column
from .common import (
    FROM_CLI,
    CliError,
    add_guard_option,
    check_output,
    connection,
    finish,
    guard_note,
    new_session,
    refuse_budget_with_batch,
    rows,
    write,
)
from .reading import add_table_options, read_input


def cmd_runs(args: argparse.Namespace, db: Database, engine: Engine) -> int:
    if args.runs_command == "list":
        listed = db.list_runs(RunFilter(limit=args.limit))
        batches = engine.batch_states([run.id for run in listed])
        for run in listed:
            print(
                f"{run.id:>6}  {run.created_at:%Y-%m-%d %H:%M}  {run.status:<11} {run.kind:<9} "
                f"{run.provider}/{run.model}  {run.succeeded}/{run.total_rows} ok  {run.failed} failed  "
                f"{run.input_name[:40]}{batch_column(batches.get(run.id, []))}"
            )
        return 0
    if args.runs_command == "rerun":
        return _rerun(args, db, engine)
    run = db.get_run(args.run_id)
    if run is None:
        raise CliError(f"No run {args.run_id}. See `python handai_cli.py runs list`.")
    if args.runs_command in ("stop", "pause"):
        stop = args.runs_command == "stop"
        if stop and any(b.open for b in engine.batches(run.id)) and not engine.is_running(run.id):
            print(f"run {run.id}: cancelled {engine.cancel_batches(run.id, _run_connections(run))} open batch(es)")
        elif not (engine.stop if stop else engine.pause)(run.id, where=FROM_CLI):
            done = "stopped" if stop else "paused"
            raise CliError(f"Run {run.id} is {run.status}; it cannot be {done} now.")
        print(f"run {run.id}: {db.get_run(run.id).status}; the process running it halts within a second")
        return 0
    if args.runs_command == "export":
        if not (args.output or args.bundle):
            raise CliError("Give --output FILE (the results table), --bundle FILE.zip (a methods bundle), or both.")
        if args.output:
            output = check_output(args.output)
            write(db, run.id, output, args.csv_formula_guard)
            print(f"Wrote {rows(run)} rows to {output}")
        if args.bundle:
            bundle = _bundle_path(args.bundle)
            data = methods_bundle(db, run.id, guard=args.csv_formula_guard)
            bundle.write_bytes(data)
            guard_note(_guarded_cells(data), f"{RESULTS} of {bundle.name}")
            print(f"Wrote the methods bundle ({RESULTS}, {ROWS}, {PROVENANCE}, METHODS.md) to {bundle}")
        return 0
    output = check_output(args.output) if args.output else None
    refuse_budget_with_batch(args, is_batch(run) if args.batch is None else args.batch)
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
        engine.resume(run.id, conn, batch=args.batch)
    else:
        engine.retry_failed(run.id, conn, batch=args.batch)
    where = conn.effective_base_url() if isinstance(conn, Connection) else ", ".join(conn)
    print(f"run {run.id}: {args.runs_command} with {run.provider} / {run.model} at {where}")
    return finish(db, engine, run.id, output, args.csv_formula_guard)


def _guarded_cells(bundle: bytes) -> int:
    """The cells the formula guard changed in a bundle's results table, as its provenance records."""
    provenance = json.loads(unzip_bundle(bundle)[PROVENANCE])
    return int(provenance.get("results_file", {}).get("guarded_cells") or 0)


def _run_connections(run: Run) -> Connection | dict[str, Connection]:
    """Today's keys for a recorded run: its own endpoint for one model; for several, one
    connection per provider (the engine sends each model to the endpoint its arm recorded)."""
    if not run.plan:
        return connection(argparse.Namespace(provider=run.provider), run.connection)
    arms = Plan.of(run).arms
    return {a.provider: connection(argparse.Namespace(provider=a.provider), a.endpoint) for a in reversed(arms)}


def _bundle_path(path: str) -> Path:
    out = Path(path)
    if out.suffix.lower() != ".zip":
        raise CliError(f"--bundle must end in .zip (got {out.name!r}).")
    if not out.parent.exists():
        raise CliError(f"The folder {out.parent} does not exist.")
    return out


def _read_bundle(path: str) -> Bundle:
    source = Path(path)
    if not source.is_file():
        raise CliError(f"No such file: {source}")
    try:
        return read_bundle(source.read_bytes(), source.name)
    except NotABundle as exc:
        raise CliError(str(exc)) from exc


def _repeat_connections(repeat: Repeat) -> Connection | dict[str, Connection]:
    """Today's keys (from the environment, never the bundle) for the endpoints the run recorded."""
    if repeat.plan is not None:
        return {
            a.provider: connection(argparse.Namespace(provider=a.provider), a.endpoint)
            for a in reversed(repeat.plan.arms)
        }
    return connection(argparse.Namespace(provider=repeat.settings.provider), repeat.endpoint or None)


def _rerun(args: argparse.Namespace, db: Database, engine: Engine) -> int:
    """Repeat a bundle's run with its recorded settings on its own rows (the results table's input
    columns) or on --input; say what differs before it runs and how many answers differ after."""
    bundle = _read_bundle(args.bundle)
    output = check_output(args.output) if args.output else None
    table, name, digest = None, "", ""
    if args.input:
        path, data, loaded = read_input(args)
        table, name, digest = loaded.df, path.name, content_hash(data)
        if change := input_file_change(bundle, digest):
            print(change)
    try:
        repeat = plan_repeat(bundle, table, name=name, digest=digest, use_cache=args.cache)
    except CannotRepeat as exc:
        raise CliError(str(exc)) from exc
    conns = _repeat_connections(repeat)
    run_id = create_repeat(engine, repeat, conns, session_id=new_session(db, f"Repeat of run {bundle.run_id}"))
    changed = recorded_differences(db, bundle, run_id, repeat)
    cache = "reply cache on" if args.cache else "reply cache off: every row is sent again"
    print(f"run {run_id}: repeating run {bundle.run_id} on {len(repeat.rows)} rows from {repeat.input_name} ({cache})")
    print("\n".join(f"differs: {line}" for line in changed) if changed else "same recorded settings and input rows")
    engine.start(run_id, conns)
    code = finish(db, engine, run_id, output, args.csv_formula_guard)
    differ, compared = compare_answers(db, bundle, run_id)
    print(f"{differ} of {compared} rows have answers that differ from the bundle's")
    return code


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
        rr.add_argument(
            "--batch",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="send them as a new provider batch (--batch) or in real time (--no-batch); default: the run's mode",
        )
    for name, what in (("stop", "stop a run, whichever process runs it"), ("pause", "pause a run (resumable)")):
        rc = rs.add_parser(name, help=what)
        rc.add_argument("run_id", type=int)
    re_ = rs.add_parser("export")
    re_.add_argument("run_id", type=int)
    re_.add_argument("--output", "-o", help="the results table (.csv, .xlsx, .json, .jsonl, .parquet)")
    re_.add_argument("--bundle", metavar="OUT.zip", help="a methods bundle: results, provenance.json, METHODS.md")
    add_guard_option(re_)
    rb = rs.add_parser("rerun", help="repeat a run from its methods bundle and say what differs")
    rb.add_argument("bundle", metavar="BUNDLE.zip")
    rb.add_argument("--input", help="run on this file instead of the bundle's own rows")
    rb.add_argument("--output", "-o")
    rb.add_argument("--cache", action="store_true", help="reuse replies already paid for (default: send every row)")
    add_table_options(rb)
    add_guard_option(rb)
