"""Compare models: one instruction, 2-8 models side by side on every row. One step, one arm per
model; the table shows each model's answer, whether they all agreed, then each cell's status."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from handai_db import Database, RowStatus, Run
from handai_engine import Plan, PlanError, Step
from handai_engine.answers import answer_key

from .agreement import Agreement, percent_agreement, row_agrees
from .arms import make_arms
from .tables import WideTable

MIN_MODELS, MAX_MODELS = 2, 8
STEP = "output"


def compare_plan(
    models: Sequence[tuple[str, str]],
    *,
    instruction: str,
    columns: Sequence[str] = (),
    row_template: str | None = None,
    output_schema: dict[str, Any] | None = None,
    json_mode: bool = False,
    temperature: float | None = None,
    max_tokens: int | None = None,
    endpoints: dict[str, dict[str, Any]] | None = None,
    compare_on: Sequence[str] = (),
    codebook: dict[str, Any] | None = None,
    examples: Sequence[Mapping[str, str]] = (),
) -> Plan:
    if not MIN_MODELS <= len(models) <= MAX_MODELS:
        raise PlanError(f"Compare takes {MIN_MODELS} to {MAX_MODELS} models; {len(models)} chosen.")
    arms = make_arms(models, endpoints=endpoints, temperature=temperature, max_tokens=max_tokens)
    step = Step(
        STEP,
        instruction,
        tuple(a.name for a in arms),
        row_template=row_template,
        columns=tuple(columns),
        output_schema=output_schema,
        json_mode=json_mode,
        compare_on=tuple(compare_on),
        examples=tuple(dict(e) for e in examples),
    )
    return Plan("compare", tuple(arms), (step,), codebook=codebook)


def compare_table(plan: Plan, input_columns: Sequence[str]) -> WideTable:
    fields = plan.steps[0].agreement_fields
    cells = plan.cells()

    def extra(by_cell: dict[Any, Any]) -> dict[str, Any]:
        keys = [_key(by_cell.get(c), fields) for c in cells]
        return {"all_agree": row_agrees(keys)}

    return WideTable(plan, list(input_columns), ("all_agree",), extra, extras_last=True)


def compare_agreement(db: Database, run: Run, plan: Plan) -> Agreement:
    """Percent agreement between the models over the whole run, streamed from the ledger."""
    fields = plan.steps[0].agreement_fields
    cells = plan.cells()
    ratings: dict[str, list[str | None]] = {plan.arms[c[1]].name: [] for c in cells}
    for _, _, results in db.iter_rows(run.id):
        by_cell = {(r.step, r.arm, r.sample): r for r in results}
        for c in cells:
            ratings[plan.arms[c[1]].name].append(_key(by_cell.get(c), fields))
    return percent_agreement(ratings)


def _key(result: Any, fields: Sequence[str]) -> str | None:
    if result is None or result.status != RowStatus.SUCCEEDED:
        return None
    return answer_key(result.parsed, fields)
