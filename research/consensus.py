"""Consensus: 2-5 coders (models, or K samples of one model) answer each row; where they all
agree that is the answer, where they don't a judge (optional) sees every answer and decides,
else the majority does. The table shows each coder, then `consensus`, whether the coders agreed,
the judge's reason and how the answer was reached."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from handai_db import RowStatus
from handai_engine import Plan, PlanError, Step
from handai_engine.answers import answer_key, answer_value

from .arms import make_arms
from .tables import WideTable

MIN_CODERS, MAX_CODERS = 2, 5
CODERS, JUDGE = "coders", "judge"
REASON = "reason"
JUDGE_INSTRUCTION = (
    "You are the judge. Several coders answered the same task for the row below, and they did not "
    "all agree. Read the row and every answer, decide the correct answer, and give a short reason. "
    "The coders' task was:\n\n{instruction}"
)
EXTRA = ("consensus", "agreed", "judge_reason", "decided_by")


def consensus_plan(
    coders: Sequence[tuple[str, str]],
    *,
    instruction: str,
    samples: int = 1,
    judge: tuple[str, str] | None = None,
    judge_always: bool = False,
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
    """Coders are several models, or one model asked `samples` times (temperature > 0). With
    `compare_on` (a codebook's code field) coders agree when those fields match. `examples` are
    the coders' few-shot pairs; the judge, whose answer carries a reason, is not given them."""
    count = len(coders) * samples
    if not MIN_CODERS <= count <= MAX_CODERS:
        raise PlanError(f"Consensus takes {MIN_CODERS} to {MAX_CODERS} coders (models x samples); {count} chosen.")
    arms = make_arms(coders, endpoints=endpoints, temperature=temperature, max_tokens=max_tokens, samples=samples)
    steps = [
        Step(
            CODERS,
            instruction,
            tuple(a.name for a in arms),
            row_template=row_template,
            columns=tuple(columns),
            output_schema=output_schema,
            json_mode=json_mode,
            compare_on=tuple(compare_on),
            examples=tuple(dict(e) for e in examples),
        )
    ]
    if judge is not None:
        judge_arm = make_arms([judge], endpoints=endpoints, max_tokens=max_tokens)[0]
        names = {a.name for a in arms}
        while judge_arm.name in names:
            judge_arm = replace(judge_arm, name=f"{judge_arm.name} (judge)")
        arms.append(judge_arm)
        fields = dict((output_schema or {}).get("fields") or {"answer": {"type": "string", "description": ""}})
        fields[REASON] = {"type": "string", "description": "Why this answer, in one or two sentences."}
        steps.append(
            Step(
                JUDGE,
                JUDGE_INSTRUCTION.format(instruction=instruction),
                (judge_arm.name,),
                row_template=row_template,
                columns=tuple(columns),
                output_schema={"fields": fields},
                run_if=None if judge_always else "not agreed",
                judge_of=CODERS,
                compare_on=tuple(compare_on),
            )
        )
    return Plan("consensus", tuple(arms), tuple(steps), codebook=codebook)


def consensus_table(plan: Plan, input_columns: Sequence[str]) -> WideTable:
    coder_cells = [c for c in plan.cells() if c[0] == 0]
    judge_cells = [c for c in plan.cells() if c[0] == 1]
    fields = plan.steps[0].fields
    compared = plan.steps[0].agreement_fields

    def names(cell: tuple[int, int, int]) -> str:
        if cell[0] == 1:
            return JUDGE
        arm = plan.arms[cell[1]]
        return f"{arm.name}#{cell[2] + 1}" if arm.samples > 1 else arm.name

    def extra(by_cell: dict[Any, Any]) -> dict[str, Any]:
        coders = [by_cell.get(c) for c in coder_cells]
        judge = by_cell.get(judge_cells[0]) if judge_cells else None
        return decide(coders, judge, fields, compared)

    consensus_columns = [f"consensus.{f}" for f in fields] if len(fields) > 1 else ["consensus"]
    return WideTable(
        plan, list(input_columns), (*consensus_columns, *EXTRA[1:]), extra, names, hidden=tuple(judge_cells)
    )


def decide(coders: Sequence[Any], judge: Any, fields: Sequence[str], compared: Sequence[str] = ()) -> dict[str, Any]:
    """The final answer of a row: unanimous, else the judge's, else a strict majority; answers
    agree on the `compared` fields (default: every field)."""
    answers = [c.parsed if c is not None and c.status == RowStatus.SUCCEEDED else None for c in coders]
    keys = [answer_key(a, compared or fields) for a in answers]
    answered = [(k, a) for k, a in zip(keys, answers, strict=True) if k is not None]
    agreed = bool(answered) and len(answered) == len(keys) and len({k for k, _ in answered}) == 1
    reason = None
    if agreed:
        final, how = answered[0][1], "unanimous"
    elif judge is not None and judge.status == RowStatus.SUCCEEDED and judge.parsed:
        reason = judge.parsed.get(REASON)
        final, how = {k: v for k, v in judge.parsed.items() if k != REASON}, "judge"
    else:
        top = Counter(k for k, _ in answered).most_common(2)
        if top and top[0][1] * 2 > len(keys) and (len(top) == 1 or top[0][1] > top[1][1]):
            final, how = next(a for k, a in answered if k == top[0][0]), "majority"
        else:
            final, how = None, "undecided"
    return {**_final_columns(final, fields), "agreed": agreed, "judge_reason": reason, "decided_by": how}


def _final_columns(final: Any, fields: Sequence[str]) -> dict[str, Any]:
    if len(fields) > 1:
        return {f"consensus.{f}": (final or {}).get(f) for f in fields}
    if fields:
        return {"consensus": (final or {}).get(fields[0])}
    value = answer_value(final)
    if isinstance(value, dict):  # a judge's {"answer": …} for free-text coders
        value = value.get("answer", value.get("output"))
    return {"consensus": value}
