"""One instruction, one model: `transform` (every row of a file) and `generate` (a new dataset)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from handai_db import Database
from handai_engine import Engine
from handai_io import content_hash
from handai_prompts import GENERATE_TEMPLATES, make_schema
from providers import PROVIDERS

from .batch import add_batch_options, submitted
from .common import (
    INPUT_HELP,
    CliError,
    add_guard_option,
    add_input_options,
    check_output,
    connection,
    finish,
    read_input,
    settings,
)


def cmd_transform(args: argparse.Namespace, db: Database, engine: Engine) -> int:
    output = check_output(args.output)
    conn = connection(args)
    path, data, table = read_input(args)
    columns = [c.strip() for c in args.columns.split(",")] if args.columns else []
    run_settings = settings(args, system_prompt=args.prompt, columns=columns, row_template=args.template)
    session_id = db.create_session(f"Command line {time.strftime('%Y-%m-%d %H:%M')}")
    run_id = engine.create_transform_run(
        table.df,
        run_settings,
        conn,
        input_name=path.name,
        input_hash=content_hash(data),
        session_id=session_id,
        limit_rows=args.limit,
        batch=args.batch,
    )
    print(f"run {run_id}: {min(len(table.df), args.limit or len(table.df))} rows from {path.name}")
    engine.start(run_id, conn)
    if args.batch and (code := submitted(engine, run_id, wait=not args.no_wait)) is not None:
        return code
    return finish(db, engine, run_id, output, args.csv_formula_guard)


def cmd_generate(args: argparse.Namespace, db: Database, engine: Engine) -> int:
    output = check_output(args.output)
    conn = connection(args)
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
    session_id = db.create_session(f"Command line {time.strftime('%Y-%m-%d %H:%M')}")
    run_id = engine.create_generate_run(
        description, args.rows, run_settings, conn, variables=variables, session_id=session_id, batch=args.batch
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
    t.add_argument("--limit", type=int, help="only the first N rows (a test run)")
    add_input_options(t)
    add_run_options(t)
    g = sub.add_parser("generate", help="generate a synthetic dataset")
    g.add_argument("--description", help="what the dataset is about")
    g.add_argument("--rows", type=int, required=True)
    g.add_argument("--template", help=", ".join(GENERATE_TEMPLATES))
    g.add_argument("--fields", nargs="*", help="name:type:description …")
    g.add_argument("--var", action="append", help="NAME=value1|value2 cycled per row")
    add_run_options(g)
