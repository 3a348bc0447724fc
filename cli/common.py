"""What every command shares: the user-error type, connections, run settings, reading the input
(a table, or documents made into rows), the progress line, following a run to its end and writing its results."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

from handai_db import Database, Run, RunStatus
from handai_engine import Engine, Plan, Progress, RunSettings
from handai_io import (
    DOCUMENT_EXTENSIONS,
    MAX_UPLOAD_BYTES,
    SPLITS,
    WRITE_SUFFIXES,
    LoadedTable,
    ReadOptions,
    read_documents,
    read_table,
    write_frames,
)
from handai_io.documents import DEFAULT_MAX_CHARS, manifest, read_document_folder
from providers import PROVIDERS, Connection, check_key_format, resolve_endpoint, resolve_key
from research.tools import table_for

OUTPUT_SUFFIXES = tuple(WRITE_SUFFIXES)
RESUMABLE = (RunStatus.PAUSED, RunStatus.INTERRUPTED, RunStatus.STOPPED)


class CliError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


def connection(args: argparse.Namespace, stored: dict[str, Any] | None = None) -> Connection:
    """The connection from the flags, or from a run's record (resume, retry) with flags winning."""
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


def read_input(args: argparse.Namespace) -> tuple[Path, bytes, LoadedTable]:
    """The input as rows, with the bytes its input hash is taken of. A table file reads as before
    (the file's bytes). A document, a ZIP of documents or a folder of them becomes document rows
    (``--split``, ``--max-chars``; the hash is of each file's name and hash, as the app takes it);
    a file that cannot be read is one line on stderr and the rest load. A lone .txt is a table
    unless --split or --max-chars says it is a document."""
    path = Path(args.input)
    split, max_chars = getattr(args, "split", None), getattr(args, "max_chars", None)
    if path.is_dir():
        return path, *_documents(args, path, split, max_chars)
    if not path.is_file():
        raise CliError(f"No such file or folder: {path}")
    suffix = path.suffix.lower().lstrip(".")
    as_document = split is not None or max_chars is not None
    if suffix in DOCUMENT_EXTENSIONS and (suffix != "txt" or as_document):
        return path, *_documents(args, path, split, max_chars)
    if as_document:
        raise CliError(f"--split and --max-chars read documents; {path.name} is read as a table.")
    data = path.read_bytes()
    table = read_table(data, path.name, ReadOptions(sheet=args.sheet, encoding=args.encoding))
    if suffix == "txt":
        print(f"note: {path.name} read as a table; add --split to read it as a document.", file=sys.stderr)
    return path, data, table


def _documents(
    args: argparse.Namespace, path: Path, split: str | None, max_chars: int | None
) -> tuple[bytes, LoadedTable]:
    """Document rows from a file, a ZIP or a folder; each file that cannot be read is one
    "skipped:" line, and nothing readable at all is a user error (exit 2)."""
    if getattr(args, "sheet", None) or getattr(args, "encoding", None):
        raise CliError("--sheet and --encoding read tables; documents are read with their encoding detected.")
    if max_chars is not None and max_chars < 100:
        raise CliError("--max-chars must be at least 100.")
    options = {"split": split or "document", "max_chars": DEFAULT_MAX_CHARS if max_chars is None else max_chars}
    many = path.is_dir() or path.suffix.lower() == ".zip"
    if path.is_dir():
        result, files = read_document_folder(path, **options)
    elif path.stat().st_size > MAX_UPLOAD_BYTES:
        raise CliError(f"{path.name} is larger than {MAX_UPLOAD_BYTES / 2**20:,.0f} MB. Split it.")
    else:
        files = [(path.name, path.read_bytes())]
        result = read_documents(files, **options)
    if not many and result.errors:
        raise CliError(result.errors[0].message)
    for problem in result.errors:
        print(f"skipped: {problem.message}", file=sys.stderr)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if result.df.empty:
        failed = len(result.errors)
        said = f"{failed} file{'s' if failed != 1 else ''} could not be read" if failed else "it holds no files"
        raise CliError(f"No readable document in {path.name} ({said}).")
    return manifest(files), LoadedTable(result.df, None, None, [], None, 0, result.notes, path.name)


def add_input_options(p: argparse.ArgumentParser) -> None:
    """How the input is read: a table's sheet and encoding; documents' split and longest row."""
    p.add_argument("--sheet", help="worksheet name for Excel files")
    p.add_argument("--encoding", help="text encoding of a table (default: detected)")
    p.add_argument(
        "--split",
        choices=SPLITS,
        help="documents: one row per document (the default), paragraph, page (PDF) or speaker turn ('Name:' lines); "
        "with a .txt file, read it as a document, not a table",
    )
    p.add_argument(
        "--max-chars",
        type=int,
        metavar="N",
        help=f"documents: a segment longer than N characters becomes several rows, cut at paragraph, then "
        f"sentence boundaries (default: {DEFAULT_MAX_CHARS:,})",
    )


INPUT_HELP = (
    "a table (CSV, TSV, TXT, Excel, JSON, JSONL, Parquet), or documents: a PDF, DOCX, TXT, Markdown or HTML file, "
    "a ZIP of them, or a folder of them"
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
    changed = write_frames(frames, output, guard=guard)
    if changed:
        print(
            f"note: {changed:,} cell{'s' if changed != 1 else ''} starting with = + - or @ got a leading ' in "
            f"{output.name} so spreadsheets do not run them as formulas; --no-csv-formula-guard keeps every "
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
