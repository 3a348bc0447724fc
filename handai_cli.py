"""Handai without a browser: the same engine and database, for large or scripted jobs.

    python handai_cli.py transform reviews.csv --prompt "Sentiment?" --provider openai \\
        --model gpt-4o-mini --output out.csv
    python handai_cli.py generate --description "Support tickets" --rows 100 --provider openai \\
        --model gpt-4o-mini --template support_tickets --output tickets.jsonl
    python handai_cli.py compare reviews.csv --prompt "Sentiment?" --model openai:gpt-4o-mini \
        --model anthropic:claude-3-5-haiku-latest --output out.csv
    python handai_cli.py consensus reviews.csv --prompt "Sentiment?" --model openai:gpt-4o-mini \
        --model groq:llama-3.1-8b-instant --judge openai:gpt-4o --output out.csv
    python handai_cli.py pipeline spec.json reviews.csv --output out.csv
    python handai_cli.py runs list | runs resume RUN_ID | runs retry-failed RUN_ID | runs export RUN_ID -o OUT

`PROVIDER:MODEL` names a model (a colon: OpenRouter's `openrouter:openai/gpt-4o-mini` holds a
slash); `custom:MODEL` is sent to `--base-url`.

Exit code 0 when every row succeeded, 1 when some failed or the run stopped, 2 for bad input.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from handai_db import Database, Run, RunFilter, RunStatus, get_db
from handai_engine import Engine, Plan, PlanError, Progress, RunSettings, get_engine
from handai_errors import RunStartError, redact
from handai_io import WRITE_SUFFIXES, FileReadError, LoadedTable, ReadOptions, content_hash, read_table, write_frames
from handai_prompts import GENERATE_TEMPLATES, TemplateError, make_schema
from providers import PROVIDERS, Connection, check_key_format, resolve_endpoint, resolve_key
from research.arms import ModelSpecError, parse_model
from research.compare import compare_agreement, compare_plan
from research.consensus import consensus_plan
from research.pipeline import load_spec, pipeline_plan
from research.tools import table_for

OUTPUT_SUFFIXES = tuple(WRITE_SUFFIXES)
RESUMABLE = (RunStatus.PAUSED, RunStatus.INTERRUPTED, RunStatus.STOPPED)


class CliError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


def _connection(args: argparse.Namespace, stored: dict[str, Any] | None = None) -> Connection:
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


def _check_output(path: str) -> Path:
    out = Path(path)
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise CliError(f"--output must end in {', '.join(OUTPUT_SUFFIXES)} (got {out.name!r}).")
    if not out.parent.exists():
        raise CliError(f"The folder {out.parent} does not exist.")
    return out


def _settings(args: argparse.Namespace, **extra: Any) -> RunSettings:
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


def _progress_line(p: Progress, width: int = 24) -> str:
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


def _follow(engine: Engine, run_id: int) -> Progress:
    """Print progress until the run ends; Ctrl-C pauses it so `runs resume` can pick it up."""
    tty = sys.stderr.isatty()
    last_print = 0.0

    def pause(_sig: int, _frame: Any) -> None:
        print(f"\nPausing run {run_id}…", file=sys.stderr)
        engine.pause(run_id)

    previous = signal.signal(signal.SIGINT, pause)
    try:
        while engine.is_running(run_id):
            engine.wait(run_id, 0.5)
            now = time.monotonic()
            if tty or now - last_print >= 5:
                print(
                    ("\r" if tty else "") + _progress_line(engine.progress(run_id)),
                    end="" if tty else "\n",
                    file=sys.stderr,
                    flush=True,
                )
                last_print = now
    finally:
        signal.signal(signal.SIGINT, previous)
    final = engine.progress(run_id)
    print(("\r" if tty else "") + _progress_line(final), file=sys.stderr)
    return final


def _write(db: Database, run_id: int, output: Path, guard: bool) -> None:
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


def _finish(db: Database, engine: Engine, run_id: int, output: Path | None, guard: bool = True) -> int:
    final = _follow(engine, run_id)
    run = db.get_run(run_id)
    if output is not None:
        _write(db, run_id, output, guard)
        print(f"Wrote {_rows(run) if run else final.total} rows to {output}")
    if run is not None and run.stop_reason:
        print(f"run {run_id} {run.status}: {run.stop_reason}", file=sys.stderr)
    if run is not None and run.status in RESUMABLE:
        print(f"Resume with: python handai_cli.py runs resume {run_id}", file=sys.stderr)
    return 0 if final.status == RunStatus.COMPLETED and final.failed == 0 and final.done == final.total else 1


def _rows(run: Run) -> int:
    """Input rows (a run of several models holds one cell per row, step, model and sample)."""
    return run.total_rows // max(1, len(Plan.of(run).cells()))


def cmd_transform(args: argparse.Namespace, db: Database, engine: Engine) -> int:
    output = _check_output(args.output)
    conn = _connection(args)
    path = Path(args.input)
    if not path.is_file():
        raise CliError(f"No such file: {path}")
    data = path.read_bytes()
    table = read_table(data, path.name, ReadOptions(sheet=args.sheet, encoding=args.encoding))
    columns = [c.strip() for c in args.columns.split(",")] if args.columns else []
    settings = _settings(args, system_prompt=args.prompt, columns=columns, row_template=args.template)
    session_id = db.create_session(f"Command line {time.strftime('%Y-%m-%d %H:%M')}")
    run_id = engine.create_transform_run(
        table.df,
        settings,
        conn,
        input_name=path.name,
        input_hash=content_hash(data),
        session_id=session_id,
        limit_rows=args.limit,
    )
    print(f"run {run_id}: {min(len(table.df), args.limit or len(table.df))} rows from {path.name}")
    engine.start(run_id, conn)
    return _finish(db, engine, run_id, output, args.csv_formula_guard)


def cmd_generate(args: argparse.Namespace, db: Database, engine: Engine) -> int:
    output = _check_output(args.output)
    conn = _connection(args)
    if args.rows < 1:
        raise CliError("--rows must be at least 1.")
    if args.template:
        template = GENERATE_TEMPLATES.get(args.template)
        if template is None:
            raise CliError(f"Unknown template {args.template!r}. Choose one of: {', '.join(GENERATE_TEMPLATES)}.")
        schema = template.schema()
        description = args.description or template.description
    else:
        fields = [dict(zip(("name", "type", "description"), f.split(":", 2), strict=False)) for f in args.fields or []]
        schema = make_schema(fields) if fields else None
        description = args.description
    if not description:
        raise CliError("Describe the dataset with --description (or pick a --template).")
    variables = {}
    for spec in args.var or []:
        name, _, values = spec.partition("=")
        variables[name.strip()] = [v.strip() for v in values.split("|")]
    settings = _settings(args, output_schema=schema)
    session_id = db.create_session(f"Command line {time.strftime('%Y-%m-%d %H:%M')}")
    run_id = engine.create_generate_run(
        description, args.rows, settings, conn, variables=variables, session_id=session_id
    )
    print(f"run {run_id}: generating {args.rows} rows")
    engine.start(run_id, conn)
    return _finish(db, engine, run_id, output, args.csv_formula_guard)


def _read_input(args: argparse.Namespace) -> tuple[Path, bytes, LoadedTable]:
    path = Path(args.input)
    if not path.is_file():
        raise CliError(f"No such file: {path}")
    data = path.read_bytes()
    return path, data, read_table(data, path.name, ReadOptions(sheet=args.sheet, encoding=args.encoding))


def _models(specs: Sequence[str]) -> list[tuple[str, str]]:
    try:
        return [parse_model(s) for s in specs]
    except ModelSpecError as exc:
        raise CliError(str(exc)) from exc


def _plan_connections(args: argparse.Namespace, providers: Sequence[str]) -> dict[str, Connection]:
    """A connection per provider; `--base-url` goes to `custom` (which has no URL of its own)."""
    conns = {}
    for provider in dict.fromkeys(providers):
        base_url = args.base_url if provider == "custom" or len(set(providers)) == 1 else None
        conns[provider] = _connection(argparse.Namespace(provider=provider, base_url=base_url))
    return conns


def _endpoints(conns: dict[str, Connection]) -> dict[str, dict[str, Any]]:
    return {p: {k: v for k, v in c.safe_dict().items() if k != "provider" and v} for p, c in conns.items()}


def _schema(args: argparse.Namespace) -> dict[str, Any] | None:
    """--fields name:type:description, with `name:category:a|b|c` for a label list."""
    fields = []
    for spec in args.fields or []:
        name, _, rest = spec.partition(":")
        kind, _, extra = rest.partition(":")
        field = {"name": name, "type": kind or "string"}
        field.update({"labels": extra.split("|")} if kind == "category" else {"description": extra})
        fields.append(field)
    return make_schema(fields) if fields else None


def _run_plan(args: argparse.Namespace, db: Database, engine: Engine, plan: Plan, conns: dict[str, Connection]) -> int:
    output = _check_output(args.output)
    path, data, table = args.loaded
    df = table.df if args.limit is None else table.df.head(args.limit)
    session_id = db.create_session(f"Command line {time.strftime('%Y-%m-%d %H:%M')}")
    run_id = engine.create_plan_run(
        df,
        plan,
        conns,
        _settings(args),
        input_name=path.name,
        input_hash=content_hash(data),
        session_id=session_id,
    )
    rows = len(df)
    del df, table, data, args.loaded  # the ledger holds the rows now: the run never keeps the file in memory
    models = ", ".join(a.label + (f" x{a.samples}" if a.samples > 1 else "") for a in plan.arms)
    print(f"run {run_id}: {rows} rows x {len(plan.cells())} calls each ({models}) from {path.name}")
    engine.start(run_id, conns)
    code = _finish(db, engine, run_id, output, args.csv_formula_guard)
    _summary(db, engine, run_id)
    return code


def _summary(db: Database, engine: Engine, run_id: int) -> None:
    """Per model (and per step) figures, and for Compare the agreement, on stdout."""
    run = db.get_run(run_id)
    if run is None:
        return
    p = engine.progress(run_id)
    for label, parts in (("model", p.arms), ("step", p.steps if len(p.steps) > 1 else {})):
        for name, f in parts.items():
            cost = f" ${f.cost_usd:.4f}" if f.cost_usd is not None else ""
            latency = f" {f.latency_ms:.0f} ms mean" if f.latency_ms is not None else ""
            skipped = f" {f.skipped} skipped" if f.skipped else ""
            print(
                f"{label} {name}: {f.succeeded} ok {f.failed} failed{skipped} | {f.calls} calls "
                f"| tokens {f.tokens_in}+{f.tokens_out}{cost}{latency}"
            )
    if run.kind == "compare":
        agreement = compare_agreement(db, run, Plan.of(run))
        print(agreement.describe())
        for pair in agreement.pairwise:
            shown = "undefined" if pair.percent is None else f"{pair.percent:.1%}"
            print(f"  {pair.raters[0]} vs {pair.raters[1]}: {shown} of {pair.n} rows")


def cmd_compare(args: argparse.Namespace, db: Database, engine: Engine) -> int:
    models = _models(args.model)
    conns = _plan_connections(args, [p for p, _ in models])
    args.loaded = _read_input(args)
    plan = compare_plan(
        models,
        instruction=args.prompt,
        **_task(args, conns),
    )
    return _run_plan(args, db, engine, plan, conns)


def cmd_consensus(args: argparse.Namespace, db: Database, engine: Engine) -> int:
    models = _models(args.model)
    judge = _models([args.judge])[0] if args.judge else None
    conns = _plan_connections(args, [p for p, _ in [*models, *([judge] if judge else [])]])
    args.loaded = _read_input(args)
    plan = consensus_plan(
        models,
        instruction=args.prompt,
        samples=args.samples,
        judge=judge,
        judge_always=args.judge_always,
        **_task(args, conns),
    )
    return _run_plan(args, db, engine, plan, conns)


def cmd_pipeline(args: argparse.Namespace, db: Database, engine: Engine) -> int:
    spec_path = Path(args.spec)
    if not spec_path.is_file():
        raise CliError(f"No such file: {spec_path}")
    spec = load_spec(spec_path.read_text(encoding="utf-8"))
    providers = []
    for step in spec.get("steps") or []:
        try:
            providers.append(parse_model(str((step or {}).get("model") or ""))[0])
        except (ModelSpecError, AttributeError):
            continue  # the plan says which step is wrong
    conns = _plan_connections(args, providers)
    args.loaded = _read_input(args)
    if args.temperature is not None:
        spec["temperature"] = args.temperature
    return _run_plan(args, db, engine, pipeline_plan(spec, endpoints=_endpoints(conns)), conns)


def _task(args: argparse.Namespace, conns: dict[str, Connection]) -> dict[str, Any]:
    """What compare and consensus share: what each row sends, the reply's shape, the parameters."""
    return {
        "columns": _columns(args),
        "row_template": args.template,
        "output_schema": _schema(args),
        "json_mode": args.json,
        "temperature": args.temperature,
        "max_tokens": args.max_tokens,
        "endpoints": _endpoints(conns),
    }


def _columns(args: argparse.Namespace) -> list[str]:
    return [c.strip() for c in args.columns.split(",")] if args.columns else []


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
        output = _check_output(args.output)
        _write(db, run.id, output, args.csv_formula_guard)
        print(f"Wrote {_rows(run)} rows to {output}")
        return 0
    output = _check_output(args.output) if args.output else None
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
    return _finish(db, engine, run.id, output, args.csv_formula_guard)


def _run_connections(run: Run) -> Connection | dict[str, Connection]:
    """Today's keys for a recorded run: its own endpoint for one model; for several, one
    connection per provider (the engine sends each model to the endpoint its arm recorded)."""
    if not run.plan:
        return _connection(argparse.Namespace(provider=run.provider), run.connection)
    arms = Plan.of(run).arms
    return {a.provider: _connection(argparse.Namespace(provider=a.provider), a.endpoint) for a in reversed(arms)}


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--provider", required=True, help=", ".join(PROVIDERS))
    p.add_argument("--model", required=True)
    p.add_argument("--base-url", help="override the provider's URL (any OpenAI-compatible endpoint)")
    p.add_argument("--api-version", help="Azure OpenAI api-version")
    p.add_argument("--deployment", help="Azure OpenAI deployment")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--max-retries", type=int, default=3)
    p.add_argument("--temperature", type=float)
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    p.add_argument("--json", action="store_true", help="ask for JSON and write one column per field")
    p.add_argument("--budget", type=float, help="pause the run before its cost passes this many USD")
    p.add_argument("--no-cache", action="store_true", help="call the model even for replies already paid for")
    p.add_argument("--output", "-o", required=True, help="OUT.csv, .xlsx, .json, .jsonl or .parquet")
    _add_guard_option(p)


def _add_guard_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--csv-formula-guard",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="CSV only: put a ' before cells starting with = + - or @ so spreadsheets do not run them as formulas "
        "(default: on; the count of changed cells is printed). Other formats keep every cell exactly.",
    )


def _add_multi_options(p: argparse.ArgumentParser, *, prompt: bool) -> None:
    p.add_argument("input")
    if prompt:
        p.add_argument("--prompt", required=True, help="the instruction (system prompt)")
        p.add_argument("--columns", help="comma-separated columns to send (default: all)")
        p.add_argument("--template", help="user message template with {column} placeholders")
        p.add_argument("--fields", nargs="*", help="output fields name:type:description, or name:category:a|b|c")
        p.add_argument("--json", action="store_true", help="ask for JSON and write one column per field")
        p.add_argument("--max-tokens", type=int)
    p.add_argument("--base-url", help="the endpoint of custom:MODEL (any OpenAI-compatible server)")
    p.add_argument("--concurrency", type=int, default=16, help="calls in flight at once, per model")
    p.add_argument("--max-retries", type=int, default=3)
    p.add_argument("--temperature", type=float)
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    p.add_argument("--budget", type=float, help="pause the run before its cost passes this many USD")
    p.add_argument("--no-cache", action="store_true", help="call the models even for replies already paid for")
    p.add_argument("--limit", type=int, help="only the first N rows (a test run)")
    p.add_argument("--sheet", help="worksheet name for Excel files")
    p.add_argument("--encoding", help="text encoding (default: detected)")
    p.add_argument("--output", "-o", required=True, help="OUT.csv, .xlsx, .json, .jsonl or .parquet")
    _add_guard_option(p)
    p.set_defaults(model=None, json=False, max_tokens=None, fields=None, columns=None, template=None, prompt="")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="handai_cli.py", description="Apply an LLM to every row of a table.")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("transform", help="run one instruction on every row of a file")
    t.add_argument("input")
    t.add_argument("--prompt", required=True, help="the instruction (system prompt)")
    t.add_argument("--columns", help="comma-separated columns to send (default: all)")
    t.add_argument("--template", help="user message template with {column} placeholders")
    t.add_argument("--limit", type=int, help="only the first N rows (a test run)")
    t.add_argument("--sheet", help="worksheet name for Excel files")
    t.add_argument("--encoding", help="text encoding (default: detected)")
    _add_run_options(t)
    g = sub.add_parser("generate", help="generate a synthetic dataset")
    g.add_argument("--description", help="what the dataset is about")
    g.add_argument("--rows", type=int, required=True)
    g.add_argument("--template", help=", ".join(GENERATE_TEMPLATES))
    g.add_argument("--fields", nargs="*", help="name:type:description …")
    g.add_argument("--var", action="append", help="NAME=value1|value2 cycled per row")
    _add_run_options(g)
    c = sub.add_parser("compare", help="one instruction, 2-8 models side by side on every row")
    _add_multi_options(c, prompt=True)
    c.add_argument("--model", action="append", required=True, metavar="PROVIDER:MODEL", help="repeat: 2 to 8")
    k = sub.add_parser("consensus", help="2-5 coders and an optional judge decide each row")
    _add_multi_options(k, prompt=True)
    k.add_argument("--model", action="append", required=True, metavar="PROVIDER:MODEL", help="a coder; repeat")
    k.add_argument("--judge", metavar="PROVIDER:MODEL", help="decides the rows where the coders disagree")
    k.add_argument("--judge-always", action="store_true", help="ask the judge on every row, not only disagreements")
    k.add_argument("--samples", type=int, default=1, help="ask each coder K times per row (use --temperature > 0)")
    pl = sub.add_parser("pipeline", help="ordered steps from a JSON spec, each with its own model")
    pl.add_argument("spec", help="SPEC.json (see research/pipeline.py)")
    _add_multi_options(pl, prompt=False)
    r = sub.add_parser("runs", help="list, resume, retry or export runs")
    rs = r.add_subparsers(dest="runs_command", required=True)
    rl = rs.add_parser("list")
    rl.add_argument("--limit", type=int, default=50)
    for name in ("resume", "retry-failed"):
        rr = rs.add_parser(name)
        rr.add_argument("run_id", type=int)
        rr.add_argument("--output", "-o")
        _add_guard_option(rr)
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
    _add_guard_option(re_)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        db = get_db()
        db.mark_interrupted_runs()
        engine = get_engine(db)
        handler = {
            "transform": cmd_transform,
            "generate": cmd_generate,
            "compare": cmd_compare,
            "consensus": cmd_consensus,
            "pipeline": cmd_pipeline,
            "runs": cmd_runs,
        }[args.command]
        return handler(args, db, engine)
    except (CliError, FileReadError, TemplateError, RunStartError, PlanError, ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"error: {redact(str(message))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    sys.exit(main())
