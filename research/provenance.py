"""A run's provenance record, read from the ledger (DESIGN: provenance is read from the ledger, never
reconstructed from today's code): what was sent, to which model and endpoint, on which input, with
what outcome, and the software that sent it. `provenance()` is pure over what the ledger returned;
`collect()` asks the ledger for it. No key can appear: every string passes through `redact`."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from handai_db import CellFigures, Database, LogRow, Rating, Run, RunCounts
from handai_engine import Plan, RunSettings
from handai_errors import redact
from providers import PROVIDERS

from .raters import rater_table
from .stats import reliability

FORMAT = "handai-provenance/1"
NOT_RECORDED = "not recorded"
LIBRARIES = (
    "streamlit",
    "openai",
    "aiohttp",
    "httpx",
    "pandas",
    "numpy",
    "sqlalchemy",
    "krippendorff",
    "openpyxl",
    "pyarrow",
    "pypdf",
    "python-docx",
)


def software() -> dict[str, Any]:
    """The app version (`git describe`, else "unknown"), Python and the key libraries' versions."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        app = done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "unknown"
    except (OSError, subprocess.SubprocessError):
        app = "unknown"
    libraries = {}
    for name in LIBRARIES:
        try:
            libraries[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libraries[name] = "not installed"
    return {"handai": app, "python": sys.version.split()[0], "libraries": libraries}


def rows_hash(df: pd.DataFrame) -> str:
    """SHA-256 of the rows' cells as text (missing = ""): the same rows hash the same whether they
    come from the ledger, a results table or a re-read input file."""
    digest = hashlib.sha256()
    for row in df.itertuples(index=False):
        cells = ["" if v is None or (isinstance(v, float) and v != v) else str(v) for v in row]
        digest.update(json.dumps(cells, ensure_ascii=False).encode())
    return digest.hexdigest()


def known_secrets() -> list[str]:
    """Every provider key set in the environment: masked wherever it appears."""
    return [os.environ[p.key_env] for p in PROVIDERS.values() if p.key_env and os.environ.get(p.key_env)]


def scrub(value: Any, secrets: Sequence[str]) -> Any:
    """`value` with every string redacted (keys given, and anything shaped like a key)."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, secrets) for v in value]
    return value


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _steps(plan: Plan) -> list[dict[str, Any]]:
    steps = []
    for step in plan.steps:
        sent = {}
        for name in step.arms:
            recorded = plan.sent.get(f"{step.name}/{name}")
            sent[name] = (
                {"model": recorded.model, "system_message": recorded.system, "parameters": recorded.params}
                if recorded
                else NOT_RECORDED
            )
        steps.append(
            {
                "name": step.name,
                "instruction": step.instruction,
                "row_template": step.row_template,
                "columns_sent_as_json": list(step.columns) if not step.row_template else [],
                "output_schema": step.output_schema,
                "json_mode": step.json_mode,
                "run_if": step.run_if,
                "after": list(step.after) if step.after is not None else None,
                "judge_of": step.judge_of,
                "arms": list(step.arms),
                "sent": sent,
            }
        )
    return steps


def _reported(arm: int, reported: Mapping[tuple[int, int], Mapping[str, int]]) -> dict[str, int]:
    """The model ids the provider named in an arm's answers, with their cells, over every step."""
    found: Counter[str] = Counter()
    for (_step, index), models in reported.items():
        if index == arm:
            found.update(models)
    return dict(found.most_common())


def _arms(
    plan: Plan, figures: Sequence[CellFigures], reported: Mapping[tuple[int, int], Mapping[str, int]]
) -> list[dict[str, Any]]:
    arms = []
    for index, arm in enumerate(plan.arms):
        mine = [f for f in figures if f.arm == index]
        costs = [f.cost_usd for f in mine if f.cost_usd is not None]
        arms.append(
            {
                "name": arm.name,
                "provider": arm.provider,
                "model": arm.model,
                "model_reported": _reported(index, reported),
                "endpoint": arm_endpoint(arm.provider, arm.endpoint),
                "temperature": arm.temperature,
                "max_tokens": arm.max_tokens,
                "samples_per_row": arm.samples,
                "cells_by_status": _by_status(mine),
                "calls_sent": sum(f.attempts for f in mine),
                "tokens_in": sum(f.tokens_in for f in mine),
                "tokens_out": sum(f.tokens_out for f in mine),
                "cost_usd": sum(costs) if costs else None,
            }
        )
    return arms


def arm_endpoint(provider: str, endpoint: dict[str, Any]) -> dict[str, Any] | str:
    """Where an arm's calls went: its recorded endpoint, else its provider's fixed default (an
    OpenAI run with no base URL went to api.openai.com), never a key."""
    recorded = {k: v for k, v in endpoint.items() if k != "api_key"}
    if recorded:
        return recorded
    default = getattr(PROVIDERS.get(provider), "base_url", None)
    return {"base_url": default, "default": True} if default else NOT_RECORDED


def _by_status(figures: Sequence[CellFigures]) -> dict[str, int]:
    out: Counter[str] = Counter()
    for f in figures:
        out[str(f.status)] += f.cells
    return dict(out)


def _outcome(run: Run, plan: Plan, counts: RunCounts, figures: Sequence[CellFigures]) -> dict[str, Any]:
    cells_per_row = max(1, len(plan.cells()))
    answered = counts.succeeded + counts.failed
    calls = sum(f.attempts for f in figures)
    return {
        "rows": counts.total // cells_per_row,
        "cells_per_row": cells_per_row,
        "cells": counts.total,
        "cells_by_status": {
            "succeeded": counts.succeeded,
            "failed": counts.failed,
            "skipped": counts.skipped,
            "pending": counts.pending,
        },
        "failed_by_error_kind": counts.errors_by_kind,
        "max_retries_per_cell": run.max_retries,
        "calls_sent": calls,
        "answers_from_cache": run.cache_hits,
        "retries": max(0, calls - max(0, answered - run.cache_hits)),
        "retries_counted_as": "calls sent beyond one per answered cell: automatic retries and re-sends of failed cells",
        "tokens_in": counts.tokens_in,
        "tokens_out": counts.tokens_out,
        "cost_usd": run.cost_usd,
    }


def _ratings(ratings: Sequence[Rating]) -> dict[str, Any]:
    raters: dict[str, dict[str, Any]] = {}
    for r in ratings:
        entry = raters.setdefault(r.rater, {"kind": r.kind, "rows": 0, "missing": 0})
        entry["rows"] += 1
        entry["missing"] += r.value is None
    humans = [name for name, e in raters.items() if e["kind"] == "human"]
    decisions = sum(e["rows"] for e in raters.values() if e["kind"] != "human")
    return {"human_coders": len(humans), "adjudicated_decisions": decisions, "raters": raters}


def provenance(
    run: Run,
    plan: Plan,
    counts: RunCounts,
    figures: Sequence[CellFigures],
    ratings: Sequence[Rating],
    logs: Sequence[LogRow],
    *,
    software: dict[str, Any],
    reported: Mapping[tuple[int, int], Mapping[str, int]] | None = None,
    input_rows_hash: str | None = None,
    agreement: dict[str, Any] | None = None,
    secrets: Sequence[str] = (),
) -> dict[str, Any]:
    """The record as a JSON-able dict, from what the ledger holds for `run` (and `plan = Plan.of(run)`);
    `reported` is `Database.reported_models(run.id)`: (step, arm) -> {model id the reply named: cells}."""
    record = {
        "format": FORMAT,
        "run": {
            "id": run.id,
            "kind": run.kind,
            "name": run.name,
            "status": run.status,
            "stop_reason": run.stop_reason,
            "created": _when(run.created_at),
            "started": _when(run.started_at),
            "finished": _when(run.finished_at),
            "active_seconds": run.active_seconds,
        },
        "input": {
            "name": run.input_name,
            "sha256": run.input_hash,
            "columns": list(run.input_columns),
            "rows_sha256": input_rows_hash,
            "selection": run.params.get("selection"),
        },
        "arms": _arms(plan, figures, reported or {}),
        "steps": _steps(plan),
        "codebook": plan.codebook,
        "settings": asdict(RunSettings.from_run(run)),
        "parameters_recorded": run.params,
        "plan": plan.record() if run.plan else None,
        "outcome": _outcome(run, plan, counts, figures),
        "ratings": _ratings(ratings),
        "agreement": agreement,
        "log": [{"ts": _when(lg.ts), "level": lg.level, "message": lg.message} for lg in logs],
        "software": software,
    }
    return scrub(record, secrets)


def model_agreement(db: Database, run: Run) -> dict[str, Any] | None:
    """Reliability over the run's model coders (and any human coders), when it has two or more."""
    table = rater_table(db, run)
    raters = [r for r in table.names() if table.frame[r].notna().any()]
    if len(raters) < 2:
        return None
    try:
        report = reliability(
            table.frame, raters=raters, labels=table.labels, multi_label=table.multi_label, resamples=0
        )
    except ValueError as exc:
        return {"error": str(exc)}
    return report.to_json()


def collect(db: Database, run_id: int, *, table: pd.DataFrame | None = None) -> dict[str, Any]:
    """Ask the ledger for everything `provenance()` needs; `table` (the results table) gives the
    hash of the input rows."""
    run = db.get_run(run_id)
    if run is None:
        raise KeyError(f"No run {run_id}")
    plan = Plan.of(run)
    columns = [c for c in run.input_columns if table is not None and c in table.columns]
    return provenance(
        run,
        plan,
        db.run_counts(run_id),
        db.cell_figures(run_id),
        db.ratings(run_id),
        db.logs(run_id),
        software=software(),
        reported=db.reported_models(run_id),
        input_rows_hash=rows_hash(table[columns]) if table is not None and columns else None,
        agreement=model_agreement(db, run) if run.plan else None,
        secrets=known_secrets(),
    )
