"""One instruction, one model: `transform` (every row of a file) and `generate` (a new dataset)."""

from __future__ import annotations

import argparse
from typing import Any

from handai_db import Database
from handai_engine import Engine, RunSettings
from handai_engine.batch import check_providers
from handai_io import content_hash
from handai_prompts import GENERATE_TEMPLATES, make_schema, validate_template
from providers import PROVIDERS

from .batch import add_batch_options, submitted
from .common import (
    CliError,
    add_guard_option,
    check_output,
    connection,
    finish,
    new_session,
    refuse_budget_with_batch,
    settings,
)
from .preflight import add_truncate_option, check_transform_rows
from .reading import INPUT_HELP, add_input_options, read_input
from .rows import add_row_options, choose_rows


def cmd_transform(args: argparse.Namespace, db: Database, engine: Engine) -> int:
    """Everything that could stop the run is checked before anything is written: the connection,
    the mode, the rows chosen, the columns and template; then the session, the run, the start."""
    output = check_output(args.output)
    refuse_budget_with_batch(args)
    conn = connection(args)
    if args.batch:
        check_providers([conn.provider])
    path, data, table = read_input(args)
    df, selection = choose_rows(args, table.df)
    columns = [c.strip() for c in args.columns.split(",")] if args.columns else []
    run_settings = settings(args, system_prompt=args.prompt, columns=columns, row_template=args.template)
    _check_columns(run_settings, [str(c) for c in df.columns])
    df = check_transform_rows(df, run_settings, args.truncate)
    run_id = engine.create_transform_run(
        df,
        run_settings,
        conn,
        input_name=path.name,
        input_hash=content_hash(data),
        session_id=new_session(db),
        selection=selection,
        batch=args.batch,
    )
    print(f"run {run_id}: {len(df)} rows from {path.name}" + (f" ({selection})" if selection else ""))
    engine.start(run_id, conn)
    if args.batch and (code := submitted(engine, run_id, wait=not args.no_wait)) is not None:
        return code
    return finish(db, engine, run_id, output, args.csv_formula_guard)


def _check_columns(run_settings: RunSettings, columns: list[str]) -> None:
    """What the engine checks of the columns and template, before the session is written."""
    if run_settings.row_template:
        validate_template(run_settings.row_template, columns)
    missing = [c for c in run_settings.columns if c not in columns]
    if missing:
        raise CliError(f"--columns: no column named {', '.join(missing)}. Columns: {', '.join(columns[:40])}.")


def cmd_generate(args: argparse.Namespace, db: Database, engine: Engine) -> int:
    output = check_output(args.output)
    refuse_budget_with_batch(args)
    conn = connection(args)
    if args.batch:
        check_providers([conn.provider])
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
    run_settings = settings(args, output_schema=schema)
    run_id = engine.create_generate_run(
        description, args.rows, run_settings, conn, variables=variables, session_id=new_session(db), batch=args.batch
    )
    print(f"run {run_id}: generating {args.rows} rows")
    engine.start(run_id, conn)
    if args.batch and (code := submitted(engine, run_id, wait=not args.no_wait)) is not None:
        return code
    return finish(db, engine, run_id, output, args.csv_formula_guard)


def add_run_options(p: argparse.ArgumentParser) -> None:
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
    add_guard_option(p)
    add_batch_options(p)


def add_parsers(sub: Any) -> None:
    t = sub.add_parser("transform", help="run one instruction on every row of a table, or on documents made into rows")
    t.add_argument("input", help=INPUT_HELP)
    t.add_argument("--prompt", required=True, help="the instruction (system prompt)")
    t.add_argument("--columns", help="comma-separated columns to send (default: all)")
    t.add_argument("--template", help="user message template with {column} placeholders")
    add_row_options(t)
    add_truncate_option(t)
    add_input_options(t)
    add_run_options(t)
    g = sub.add_parser("generate", help="generate a synthetic dataset")
    g.add_argument("--description", help="what the dataset is about")
    g.add_argument("--rows", type=int, required=True)
    g.add_argument("--template", help=", ".join(GENERATE_TEMPLATES))
    g.add_argument("--fields", nargs="*", help="name:type:description …")
    g.add_argument("--var", action="append", help="NAME=value1|value2 cycled per row")
    add_run_options(g)
