"""METHODS.md from a run's provenance record: a paragraph a researcher can adapt for a paper's
methods section, then every instruction in full; the methods bundle (results table,
provenance.json, METHODS.md) that carries both with the results; and what differs when a bundle's
run is repeated."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd

from handai_db import Database
from handai_io import export_bytes, guarded_cells, zip_bundle

from .provenance import NOT_RECORDED, collect, known_secrets, scrub
from .tools import table_for

RESULTS = "results.csv"
PROVENANCE = "provenance.json"
METHODS = "METHODS.md"
# The input rows exactly as sent (JSON Lines is never altered): a repeat sends these, not the CSV's
# cells, which the formula guard may have changed ("@user" written as "'@user").
ROWS = "rows.jsonl"


def _date(stamp: str | None) -> str:
    return stamp[:10] if stamp else "an unrecorded date"


def _dates(run: dict[str, Any]) -> str:
    start, end = _date(run["started"] or run["created"]), _date(run["finished"])
    return f"on {start}" if start == end else f"between {start} and {end}"


def _params(params: dict[str, Any]) -> str:
    shown = {k: v for k, v in params.items() if k != "response_format"}
    text = ", ".join(f"{k} = {json.dumps(v)}" for k, v in shown.items()) or "the provider's defaults"
    return text + (" and a JSON output schema" if "response_format" in params else "")


def _reported_as(requested: str, reported: dict[str, int]) -> str:
    """The clause that names the model the provider said answered (", reported as gpt-4o-2024-08-06")
    when it is not the one asked for, with each id's answers when it named several; nothing when it
    named the one asked for, or none."""
    if not set(reported) - {requested}:
        return ""
    if len(reported) == 1:
        return f", reported as {next(iter(reported))}"
    named = ", ".join(f"{model} for {cells:,} answer{'s' if cells != 1 else ''}" for model, cells in reported.items())
    return f", reported as {named}"


def _models(prov: dict[str, Any]) -> str:
    parts = []
    for arm in prov["arms"]:
        also = _reported_as(arm["model"], arm.get("model_reported") or {})
        samples = f", asked {arm['samples_per_row']} times per row" if arm["samples_per_row"] > 1 else ""
        endpoint = arm["endpoint"]
        if not isinstance(endpoint, dict):
            where = "endpoint not recorded"
        else:
            where = f"via {endpoint['base_url']}" if endpoint.get("base_url") else "via the provider's own endpoint"
        parts.append(f"{arm['model']} ({arm['provider']}, {where}{also}{samples})")
    return "; ".join(parts)


def _failures(outcome: dict[str, Any]) -> str:
    cells = outcome["cells_by_status"]
    text = (
        f"Each answer was retried up to {outcome['max_retries_per_cell']} times on transient errors "
        f"(time-outs, server errors; a rate limit paused every call instead of spending a retry); "
        f"{outcome['calls_sent']:,} calls were sent in all "
        f"({outcome['retries']:,} of them retries), and {outcome['answers_from_cache']:,} answers were reused "
        f"from the reply cache. "
    )
    if cells["failed"]:
        kinds = ", ".join(f"{k}: {n}" for k, n in sorted(outcome["failed_by_error_kind"].items()))
        text += f"{cells['failed']:,} answers failed ({kinds}); they are marked as failed in the results table. "
    else:
        text += "No answer failed. "
    if cells["skipped"]:
        text += f"{cells['skipped']:,} answers were skipped because their step's condition did not hold. "
    if cells["pending"]:
        text += f"{cells['pending']:,} answers were never obtained (the run ended {NOT_RECORDED!r} for them). "
    return text


def _agreement(prov: dict[str, Any]) -> str:
    report = prov.get("agreement")
    if not report or "error" in report:
        return ""
    figures = [
        f"{name.replace('_', ' ')} = {value:.3f}"
        for name, value in report.items()
        if isinstance(value, float) and name != "n_units"
    ]
    if not figures:
        return ""
    return f"Agreement between the coders over {report.get('n_units', '?')} rows: " + "; ".join(figures) + ". "


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:200]


def methods_text(prov: dict[str, Any]) -> str:
    """The methods paragraph and an appendix with each instruction and system message as sent."""
    run, outcome, steps = prov["run"], prov["outcome"], prov["steps"]
    cost = outcome["cost_usd"]
    purpose = "; ".join(
        f"'{s['name']}': {s['instruction'].strip().splitlines()[0][:200]}" for s in steps if s["instruction"]
    )
    codebook = prov.get("codebook") or {}
    ref = codebook.get("ref") or {}
    paragraph = (
        f"We processed {outcome['rows']:,} rows of {prov['input']['name'] or 'an unnamed input'} "
        f"(SHA-256 {prov['input']['sha256'] or NOT_RECORDED}) with Handai {prov['software']['handai']} "
        f"{_dates(run)}, using "
        f"{_models(prov)}. "
        f"The run had {len(steps)} step{'s' if len(steps) != 1 else ''} ({purpose or 'no instruction recorded'}); "
        f"each row was sent as a user message with the step's instruction as the system message "
        f"(reproduced in full below). "
        + (f"Codes came from the codebook '{ref.get('name')}', version {ref.get('version')}. " if ref else "")
        + f"This gave {outcome['cells']:,} answers ({outcome['cells_by_status']['succeeded']:,} succeeded). "
        + _failures(outcome)
        + _agreement(prov)
        + f"The run used {outcome['tokens_in']:,} input and {outcome['tokens_out']:,} output tokens"
        + (f" at an estimated cost of US${cost:.2f}." if cost is not None else " (cost not known).")
    )
    lines = [
        f"# Methods: Handai run {run['id']} ({run['kind']})",
        "",
        "Adapt this paragraph for your methods section; every figure comes from provenance.json.",
        "",
        paragraph,
        "",
        "## Appendix: instructions as sent",
    ]
    for step in steps:
        lines += ["", f"### Step {step['name']}" + (f" (only where {step['run_if']})" if step["run_if"] else "")]
        if step["row_template"]:
            lines += ["", "Each row's user message:", "", "```text", step["row_template"], "```"]
        elif step["columns_sent_as_json"]:
            lines += ["", "Each row was sent as JSON with the columns: " + ", ".join(step["columns_sent_as_json"])]
        for arm, sent in step["sent"].items():
            if sent == NOT_RECORDED:
                lines += ["", f"{arm}: what was sent is {NOT_RECORDED} for this run."]
                continue
            lines += ["", f"System message sent to {arm} ({sent['model']}; {_params(sent['parameters'])}):"]
            lines += ["", "```text", sent["system_message"], "```"]
    return "\n".join(lines) + "\n"


def results_table(db: Database, run_id: int) -> pd.DataFrame:
    """The run's results table, as the page and `runs export` write it."""
    run = db.get_run(run_id)
    if run is None:
        raise KeyError(f"No run {run_id}")
    frames = list(table_for(run).frames(db, run)) if run.plan else [db.results_frame(run_id)]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def methods_bundle(db: Database, run_id: int, *, guard: bool = True) -> bytes:
    """The ZIP: results.csv (formula guard as asked, recorded), the input rows exactly as sent
    (rows.jsonl), provenance.json and METHODS.md."""
    table = results_table(db, run_id)
    prov = collect(db, run_id, table=table)
    prov["results_file"] = {
        "name": RESULTS,
        "csv_formula_guard": guard,
        "guarded_cells": guarded_cells(table) if guard else 0,
    }
    secrets = known_secrets()
    columns = [c for c in prov["input"]["columns"] if c in table.columns]
    return zip_bundle(
        {
            RESULTS: export_bytes(table, "csv", guard=guard),
            ROWS: export_bytes(table[columns], "jsonl"),
            PROVENANCE: json.dumps(scrub(prov, secrets), ensure_ascii=False, indent=2),
            METHODS: scrub(methods_text(prov), secrets),
        }
    )


def _facts(prov: dict[str, Any]) -> dict[str, Any]:
    """What a repeat should keep the same, flattened to name -> value."""
    facts: dict[str, Any] = {
        "input rows": prov["outcome"]["rows"],
        "input columns": prov["input"]["columns"],
        "input rows (SHA-256 of their cells)": prov["input"]["rows_sha256"],
        "codebook": (prov.get("codebook") or {}).get("ref"),
        "Handai version": prov["software"]["handai"],
    }
    for arm in prov["arms"]:
        where = arm["endpoint"].get("base_url") if isinstance(arm["endpoint"], dict) else NOT_RECORDED
        facts[f"model {arm['name']}"] = f"{arm['provider']}:{arm['model']} at {where}"
        facts[f"model {arm['name']} as reported"] = sorted(arm.get("model_reported") or {})
    for step in prov["steps"]:
        for key in ("instruction", "row_template", "output_schema", "run_if"):
            facts[f"step {step['name']} {key}"] = step[key]
        for arm, sent in step["sent"].items():
            facts[f"step {step['name']} / {arm} system message"] = (
                sent if sent == NOT_RECORDED else sent["system_message"]
            )
            facts[f"step {step['name']} / {arm} parameters"] = sent if sent == NOT_RECORDED else sent["parameters"]
    for key in ("max_retries", "timeout", "examples"):
        facts[f"setting {key}"] = prov["settings"].get(key)
    return facts


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """One line per recorded fact that differs between two provenance records."""
    before, after = _facts(old), _facts(new)
    return [
        f"{name}: {json.dumps(before.get(name), ensure_ascii=False)[:200]} -> "
        f"{json.dumps(after.get(name), ensure_ascii=False)[:200]}"
        for name in dict.fromkeys([*before, *after])
        if before.get(name) != after.get(name)
    ]


def answers_differ(recorded: pd.DataFrame, repeated: pd.DataFrame, input_columns: Sequence[str]) -> tuple[int, int]:
    """(rows whose answers differ, rows compared): every output column both tables hold, row by
    row in order, compared as text (error messages are left out: they name times and attempts)."""
    shared = [
        c for c in recorded.columns if c in repeated.columns and c not in input_columns and not c.endswith("error")
    ]
    n = min(len(recorded), len(repeated))

    def text(df: pd.DataFrame) -> pd.DataFrame:
        part = df[shared].head(n).reset_index(drop=True)
        return part.astype(object).where(part.notna(), "").astype(str)

    return int((text(recorded) != text(repeated)).any(axis=1).sum()), n
