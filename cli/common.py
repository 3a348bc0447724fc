"""What every command shares: the user-error type, connections, run settings, the session, the
progress line, following a run to its end and writing its results (reading the input: `reading`)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

from handai_db import Database, Run, RunStatus
from handai_engine import Engine, Plan, Progress, RunSettings
from handai_io import WRITE_SUFFIXES, write_counted
from providers import PROVIDERS, Connection, check_connection, check_key_format, resolve_endpoint, resolve_key
from research.tools import table_for

OUTPUT_SUFFIXES = tuple(WRITE_SUFFIXES)
RESUMABLE = (RunStatus.PAUSED, RunStatus.INTERRUPTED, RunStatus.STOPPED)


class CliError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


def connection(args: argparse.Namespace, stored: dict[str, Any] | None = None) -> Connection:
    """The connection from the flags, or from a run's record (resume, retry) with flags winning;
    checked as the engine checks it before a run is written (a key, an endpoint), so a run that
    could not start is refused before anything is written."""
    stored = stored or {}
    provider = getattr(args, "provider", None) or stored.get("provider")
    if provider not in PROVIDERS:
        raise CliError(f"Unknown provider {provider!r}. Choose one of: {', '.join(PROVIDERS)}.")
    key = resolve_key(provider).key
    record = {
        "provider": provider,
        "base_url": getattr(args, "base_url", None) or stored.get("base_url") or resolve_endpoint(provider),
        "api_version": getattr(args, "api_version", None) or stored.get("api_version"),
        "deployment": getattr(args, "deployment", None) or stored.get("deployment"),
    }
    conn = Connection.from_record(record, key)
    check = check_key_format(provider, key)
    if check.level == "error" and PROVIDERS[provider].needs_key:
        raise CliError(f"{check.message} Set {PROVIDERS[provider].key_env} in the environment.")
    check_connection(conn)
    if check.level == "warning":
        print(f"warning: {check.message}", file=sys.stderr)
    return conn


def check_output(path: str) -> Path:
    out = Path(path)
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise CliError(f"--output must end in {', '.join(OUTPUT_SUFFIXES)} (got {out.name!r}).")
    if not out.parent.exists():
        raise CliError(f"The folder {out.parent} does not exist.")
    return out


def refuse_budget_with_batch(args: argparse.Namespace, batch: bool | None = None) -> None:
    """A budget cap pauses a run before its next call; a batch is submitted whole, so nothing is
    left to pause. Refused before anything is read or written."""
    batch = getattr(args, "batch", False) if batch is None else batch
    if batch and getattr(args, "budget", None) is not None:
        raise CliError(
            "A budget cap cannot pause a batch: every request is submitted to the provider at once and "
            "billed as it completes; remove --budget or drop --batch."
        )


def new_session(db: Database, title: str = "Command line") -> int:
    """The session a command's run is filed under, created only once the run is sure to start."""
    return db.create_session(f"{title} {time.strftime('%Y-%m-%d %H:%M')}")


def settings(args: argparse.Namespace, **extra: Any) -> RunSettings:
    if args.concurrency < 1 or args.max_retries < 0:
        raise CliError("--concurrency must be at least 1 and --max-retries at least 0.")
    return RunSettings(
        provider=getattr(args, "provider", None) or "",
        model=args.model if isinstance(args.model, str) else "",
        json_mode=args.json,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        concurrency=args.concurrency,
        max_retries=args.max_retries,
        timeout=args.timeout,
        use_cache=not args.no_cache,
        budget_usd=args.budget,
        **extra,
    )


def _short(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 10_000 else str(n)


def progress_line(p: Progress, width: int = 24) -> str:
    """One terminal line: bar, counts, speed, ETA, concurrency, tokens, cost and cache savings."""
    filled = int(width * p.fraction)
    bar = "#" * filled + "." * (width - filled)
    eta = f" ETA {p.eta_s:.0f}s" if p.eta_s is not None and not p.finished else ""
    cost = f" ${p.cost_usd:.4f}" if p.cost_usd is not None else ""
    cache = f" cached {p.cache_hits}" if p.cache_hits else ""
    return (
        f"run {p.run_id} [{bar}] {p.done}/{p.total} {100 * p.fraction:.0f}%"
        f" | {p.succeeded} ok {p.failed} failed{f' {p.skipped} skipped' if p.skipped else ''} {p.retrying} retrying"
        f" | {p.rows_per_s:.1f} rows/s{eta} | concurrency {p.concurrency}/{p.max_concurrency}"
        f" | tokens {_short(p.tokens_in)}+{_short(p.tokens_out)}{cost}{cache}"
    )


FROM_CLI = "from the command line"


def follow(engine: Engine, run_id: int) -> Progress:
    """Print progress until the run ends; Ctrl-C pauses it so `runs resume` can pick it up."""
    tty = sys.stderr.isatty()
    last_print = 0.0

    def pause(_sig: int, _frame: Any) -> None:
        print(f"\nPausing run {run_id}…", file=sys.stderr)
        engine.pause(run_id, where=f"{FROM_CLI} (Ctrl-C)")

    previous = signal.signal(signal.SIGINT, pause)
    try:
        while engine.is_running(run_id):
            engine.wait(run_id, 0.5)
            now = time.monotonic()
            if tty or now - last_print >= 5:
                print(
                    ("\r" if tty else "") + progress_line(engine.progress(run_id)),
                    end="" if tty else "\n",
                    file=sys.stderr,
                    flush=True,
                )
                last_print = now
    finally:
        signal.signal(signal.SIGINT, previous)
    final = engine.progress(run_id)
    print(("\r" if tty else "") + progress_line(final), file=sys.stderr)
    return final


def write(db: Database, run_id: int, output: Path, guard: bool) -> None:
    """The run's results to ``output``; says on stderr which cells the CSV formula guard changed.
    A run of several models is streamed from the ledger in chunks of rows."""
    run = db.get_run(run_id)
    frames = table_for(run).frames(db, run) if run is not None and run.plan else [db.results_frame(run_id)]
    written = write_counted(frames, output, guard=guard)
    guard_note(written.guarded, output.name)
    if written.xlsx_changed:
        n = written.xlsx_changed
        print(
            f"note: {n:,} {'cells hold' if n != 1 else 'cell holds'} control characters XLSX cannot store; removed in "
            f"{output.name} only (CSV, JSON, JSONL and Parquet keep them).",
            file=sys.stderr,
        )


def guard_note(changed: int, where: str) -> None:
    """Say on stderr how many cells the CSV formula guard changed in `where` (nothing when none)."""
    if changed:
        print(
            f"note: {changed:,} cell{'s' if changed != 1 else ''} starting with = + - or @ got a leading ' in "
            f"{where} so spreadsheets do not run them as formulas; --no-csv-formula-guard keeps every "
            "cell exactly (XLSX, JSON, JSONL and Parquet always do).",
            file=sys.stderr,
        )


def finish(db: Database, engine: Engine, run_id: int, output: Path | None, guard: bool = True) -> int:
    final = follow(engine, run_id)
    run = db.get_run(run_id)
    if output is not None:
        write(db, run_id, output, guard)
        print(f"Wrote {rows(run) if run else final.total} rows to {output}")
    if run is not None and run.stop_reason:
        print(f"run {run_id} {run.status}: {run.stop_reason}", file=sys.stderr)
    if run is not None and run.status in RESUMABLE:
        print(f"Resume with: python handai_cli.py runs resume {run_id}", file=sys.stderr)
    return 0 if final.status == RunStatus.COMPLETED and final.failed == 0 and final.done == final.total else 1


def rows(run: Run) -> int:
    """Input rows (a run of several models holds one cell per row, step, model and sample)."""
    return run.total_rows // max(1, len(Plan.of(run).cells()))


def add_guard_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--csv-formula-guard",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="CSV only: put a ' before cells starting with = + - or @ so spreadsheets do not run them as formulas "
        "(default: on; the count of changed cells is printed). Other formats keep every cell exactly.",
    )
