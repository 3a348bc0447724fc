"""Runs of several models or steps: `compare`, `consensus`, `code` (the Qualitative coder) and
`pipeline`; the task options they share, and the per-model summary printed after each."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from handai_db import Database
from handai_engine import Engine, Plan
from handai_engine.batch import check_batchable
from handai_io import content_hash
from handai_prompts import make_schema
from providers import Connection
from research.arms import ModelSpecError, parse_model
from research.coder import codebook_record, coder_plan, coder_summary, with_codebook
from research.compare import compare_agreement, compare_plan
from research.consensus import consensus_plan
from research.pipeline import load_spec, pipeline_plan

from .batch import add_batch_options, submitted
from .codebooks import add_codebook_options, load_codebook, usable
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
from .preflight import add_truncate_option, check_plan_rows
from .reading import INPUT_HELP, add_input_options, read_input
from .rows import add_row_options, choose_rows


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
        conns[provider] = connection(argparse.Namespace(provider=provider, base_url=base_url))
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


def _first_checks(args: argparse.Namespace) -> None:
    """What can be refused before the input is read: the output's name, a budget with --batch."""
    check_output(args.output)
    refuse_budget_with_batch(args)


def _run_plan(args: argparse.Namespace, db: Database, engine: Engine, plan: Plan, conns: dict[str, Connection]) -> int:
    """Check all the engine checks (the plan against the columns, the batch mode, the settings)
    and choose the rows before anything is written; then the session, the run, the start."""
    output = check_output(args.output)
    path, data, table = args.loaded
    df, selection = choose_rows(args, table.df)
    plan.validate([str(c) for c in df.columns])
    if args.batch:
        check_batchable(plan)
    run_settings = settings(args)
    df = check_plan_rows(df, plan, args.truncate)
    run_id = engine.create_plan_run(
        df,
        plan,
        conns,
        run_settings,
        input_name=path.name,
        input_hash=content_hash(data),
        session_id=new_session(db),
        selection=selection,
        batch=args.batch,
    )
    rows = len(df)
    del df, table, data, args.loaded  # the ledger holds the rows now: the run never keeps the file in memory
    models = ", ".join(a.label + (f" x{a.samples}" if a.samples > 1 else "") for a in plan.arms)
    chosen = f" ({selection})" if selection else ""
    print(f"run {run_id}: {rows} rows x {len(plan.cells())} calls each ({models}) from {path.name}{chosen}")
    engine.start(run_id, conns)
    if args.batch and (code := submitted(engine, run_id, wait=not args.no_wait)) is not None:
        return code
    code = finish(db, engine, run_id, output, args.csv_formula_guard)
    _summary(db, engine, run_id)
    return code


def _summary(db: Database, engine: Engine, run_id: int) -> None:
    """Per model (and per step) figures, for Compare the agreement, for the coder its counts, on stdout."""
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
    if run.kind == "coder":
        _coder_counts(db, run_id, Plan.of(run))


def _coder_counts(db: Database, run_id: int, plan: Plan) -> None:
    """What the coder answered, over every cell: on the codebook or off it (the off answers kept
    and named), unparseable, failed, quotes not in the text, and how often each code was given."""
    s = coder_summary(plan, db.iter_rows(run_id))
    off = ", ".join(f'"{answer}" x{n}' for answer, n in s.off_answers.most_common())
    print(
        f"coded {s.coded} of {s.cells} | off the codebook {s.off_codebook}{f' ({off})' if off else ''}"
        f"{f' | no code given {s.empty}' if s.empty else ''}"
        f" | unparseable {s.unparseable} | failed {s.failed}{f' | not done {s.not_done}' if s.not_done else ''}"
        f" | quotes not in the text {s.quotes_missing} of {s.quotes_checked}"
    )
    print("codes: " + (", ".join(f"{code} {n}" for code, n in s.code_counts.most_common()) or "none given"))


def _instruction(args: argparse.Namespace, db: Database) -> dict[str, Any]:
    """Compare's and Consensus's instruction: --prompt; or with --codebook, the codebook's
    instruction (the prompt its task), output schema, compared field and record."""
    if not args.codebook:
        if args.prompt is None:
            raise CliError(
                "Give the instruction with --prompt, or a codebook with --codebook (then --prompt is the task)."
            )
        return {"instruction": args.prompt}
    if args.fields:
        raise CliError("--fields cannot be used with --codebook: a codebook defines the output (its codes).")
    codebook, ref = load_codebook(args.codebook, db)
    task = args.prompt or ""
    options = {"task": task, "rationale": not args.no_rationale, "evidence": not args.no_evidence}
    return {**with_codebook(usable(codebook), **options), "codebook": codebook_record(codebook, ref, **options)}


def cmd_compare(args: argparse.Namespace, db: Database, engine: Engine) -> int:
    _first_checks(args)
    instruction = _instruction(args, db)
    models = _models(args.model)
    conns = _plan_connections(args, [p for p, _ in models])
    args.loaded = read_input(args)
    plan = compare_plan(models, **{**_task(args, conns), **instruction})
    return _run_plan(args, db, engine, plan, conns)


def cmd_consensus(args: argparse.Namespace, db: Database, engine: Engine) -> int:
    _first_checks(args)
    instruction = _instruction(args, db)
    models = _models(args.model)
    judge = _models([args.judge])[0] if args.judge else None
    conns = _plan_connections(args, [p for p, _ in [*models, *([judge] if judge else [])]])
    args.loaded = read_input(args)
    plan = consensus_plan(
        models,
        samples=args.samples,
        judge=judge,
        judge_always=args.judge_always,
        **{**_task(args, conns), **instruction},
    )
    return _run_plan(args, db, engine, plan, conns)


def cmd_code(args: argparse.Namespace, db: Database, engine: Engine) -> int:
    _first_checks(args)
    codebook, ref = load_codebook(args.codebook, db)
    models = _models(args.model)
    conns = _plan_connections(args, [p for p, _ in models])
    args.loaded = read_input(args)
    plan = coder_plan(
        usable(codebook),
        models,
        task=args.prompt or "",
        columns=_columns(args),
        row_template=args.template,
        rationale=not args.no_rationale,
        evidence=not args.no_evidence,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        samples=args.samples,
        endpoints=_endpoints(conns),
        codebook_ref=ref,
    )
    return _run_plan(args, db, engine, plan, conns)


def cmd_pipeline(args: argparse.Namespace, db: Database, engine: Engine) -> int:
    _first_checks(args)
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
    args.loaded = read_input(args)
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


def _add_multi_options(p: argparse.ArgumentParser, *, prompt: bool) -> None:
    p.add_argument("input", help=INPUT_HELP)
    if prompt:
        p.add_argument("--prompt", help="the instruction (system prompt); with --codebook, the task (optional)")
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
    add_row_options(p)
    add_truncate_option(p)
    add_input_options(p)
    p.add_argument("--output", "-o", required=True, help="OUT.csv, .xlsx, .json, .jsonl or .parquet")
    add_guard_option(p)
    add_batch_options(p)
    p.set_defaults(model=None, json=False, max_tokens=None, fields=None, columns=None, template=None)
    if not prompt:
        p.set_defaults(prompt="")


def add_parsers(sub: Any) -> None:
    c = sub.add_parser("compare", help="one instruction, 2-8 models side by side on every row")
    _add_multi_options(c, prompt=True)
    c.add_argument("--model", action="append", required=True, metavar="PROVIDER:MODEL", help="repeat: 2 to 8")
    add_codebook_options(c, required=False)
    k = sub.add_parser("consensus", help="2-5 coders and an optional judge decide each row")
    _add_multi_options(k, prompt=True)
    k.add_argument("--model", action="append", required=True, metavar="PROVIDER:MODEL", help="a coder; repeat")
    k.add_argument("--judge", metavar="PROVIDER:MODEL", help="decides the rows where the coders disagree")
    k.add_argument("--judge-always", action="store_true", help="ask the judge on every row, not only disagreements")
    k.add_argument("--samples", type=int, default=1, help="ask each coder K times per row (use --temperature > 0)")
    add_codebook_options(k, required=False)
    d = sub.add_parser("code", help="1-8 models apply a codebook to every row (the Qualitative coder)")
    _add_multi_options(d, prompt=False)
    d.add_argument("--model", action="append", required=True, metavar="PROVIDER:MODEL", help="a coder; repeat")
    add_codebook_options(d, required=True)
    d.add_argument("--prompt", default="", help="the task, said before the codebook (optional)")
    d.add_argument("--columns", help="comma-separated columns to send (default: all)")
    d.add_argument("--template", help="user message template with {column} placeholders")
    d.add_argument("--max-tokens", type=int)
    d.add_argument("--samples", type=int, default=1, help="ask each model K times per row (use --temperature > 0)")
    pl = sub.add_parser("pipeline", help="ordered steps from a JSON spec, each with its own model")
    pl.add_argument("spec", help="SPEC.json (see research/pipeline.py)")
    _add_multi_options(pl, prompt=False)
