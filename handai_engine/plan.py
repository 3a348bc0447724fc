"""A run as a small per-row graph of calls (DESIGN "Runs are small graphs of calls").

An **arm** is a provider + model + parameters (its own client, limiter and price when the run is
sent); a **step** is an instruction and an output schema answered by one or more arms, after
earlier steps, optionally only where `run_if` holds. A **cell** is (row, step, arm, sample): the
ledger holds one result per cell. Transform and Generate are one step x one arm x one sample and
keep their plan in the run's own columns; multi-model runs record the whole plan, including
exactly what each (step, arm) sends, in `runs.plan`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from handai_db import Run
from handai_prompts import is_structured, json_schema, system_message, template_fields
from providers import request_params

from .conditions import ConditionError, check_condition

STEP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")
AGREED = "agreed"  # in a judge step's scope: whether every answer it judges is the same
ANSWERS = "answers"  # in a judge step's scope: the answers it judges, one per line
ROW = "row"  # in every scope: the whole input row (for columns whose names have spaces)


class PlanError(ValueError):
    """A plan that cannot run; the message says what to change."""


@dataclass(frozen=True)
class Arm:
    """One model that answers: `samples` > 1 asks it that many times per row (self-consistency)."""

    name: str
    provider: str
    model: str
    endpoint: dict[str, Any] = field(default_factory=dict)  # base_url, api_version, deployment; never a key
    temperature: float | None = None
    max_tokens: int | None = None
    samples: int = 1

    @property
    def label(self) -> str:
        return f"{self.provider}:{self.model}"


@dataclass(frozen=True)
class Step:
    """One instruction answered by `arms` (names) after the steps in `after` (default: all
    earlier steps). A judge step (`judge_of`) sees every answer of that step for the row."""

    name: str
    instruction: str
    arms: tuple[str, ...]
    row_template: str | None = None
    columns: tuple[str, ...] = ()
    output_schema: dict[str, Any] | None = None
    json_mode: bool = False
    run_if: str | None = None
    after: tuple[str, ...] | None = None
    judge_of: str | None = None
    compare_on: tuple[str, ...] = ()  # the fields answers agree on (a codebook's code); default all
    examples: tuple[dict[str, str], ...] = ()  # few-shot {"input", "output"} pairs, sent as earlier turns

    @property
    def structured(self) -> bool:
        return is_structured(self.output_schema, self.json_mode)

    @property
    def fields(self) -> list[str]:
        return list((self.output_schema or {}).get("fields") or {})

    @property
    def agreement_fields(self) -> list[str]:
        """Two answers agree when these fields match: a coder's rationale may differ, its code not."""
        return list(self.compare_on) or self.fields


@dataclass(frozen=True)
class Sent:
    """Exactly what one (step, arm) sends besides the row's own user message."""

    model: str
    system: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Plan:
    tool: str
    arms: tuple[Arm, ...]
    steps: tuple[Step, ...]
    sent: dict[str, Sent] = field(default_factory=dict)  # "step/arm" -> what is sent
    codebook: dict[str, Any] | None = None  # {"ref": {id, name, version}, "content": the codebook applied}

    # -- shape ----------------------------------------------------------------------------------
    def arm(self, name: str) -> Arm:
        return next(a for a in self.arms if a.name == name)

    def arm_index(self, name: str) -> int:
        return next(i for i, a in enumerate(self.arms) if a.name == name)

    def step_index(self, name: str) -> int:
        return next(i for i, s in enumerate(self.steps) if s.name == name)

    def cells(self) -> list[tuple[int, int, int]]:
        """(step, arm, sample) of every cell of one row, in the order they are written."""
        return [
            (si, self.arm_index(a), k)
            for si, step in enumerate(self.steps)
            for a in step.arms
            for k in range(self.arm(a).samples)
        ]

    def depends_on(self, step: Step) -> list[int]:
        """The steps whose answers must be in before `step` runs for a row."""
        index = self.step_index(step.name)
        names = step.after if step.after is not None else [s.name for s in self.steps[:index]]
        needed = {self.step_index(n) for n in names}
        if step.judge_of:
            needed.add(self.step_index(step.judge_of))
        return sorted(needed)

    def sent_for(self, step: int, arm: int) -> Sent:
        return self.sent[f"{self.steps[step].name}/{self.arms[arm].name}"]

    @property
    def single(self) -> bool:
        return len(self.cells()) == 1

    # -- checks and the record ------------------------------------------------------------------
    def validate(self, input_columns: Sequence[str]) -> None:
        """Everything that would stop a row from being sent, said before anything is written."""
        if not self.arms:
            raise PlanError("Add at least one model.")
        if not self.steps:
            raise PlanError("Add at least one step.")
        _unique([a.name for a in self.arms], "model")
        _unique([s.name for s in self.steps], "step")
        for arm in self.arms:
            if arm.samples < 1:
                raise PlanError(f"Model '{arm.name}' must be asked at least once per row.")
        earlier: list[Step] = []
        for step in self.steps:
            if not STEP_NAME.match(step.name):
                raise PlanError(
                    f"Step name '{step.name}' must start with a letter and use only letters, digits and _ "
                    "(it is used as {step} in later instructions)."
                )
            if step.name in input_columns:
                raise PlanError(f"Step name '{step.name}' is also a column name; rename the step.")
            if not step.arms:
                raise PlanError(f"Step '{step.name}' has no model.")
            for example in step.examples:
                if not all(isinstance(example.get(k), str) for k in ("input", "output")):
                    raise PlanError(f"Step '{step.name}': each example needs an input and an output text.")
            for name in step.arms:
                if name not in {a.name for a in self.arms}:
                    raise PlanError(f"Step '{step.name}' uses model '{name}', which is not in the run.")
            known = {s.name for s in earlier}
            for name in [*(step.after or ()), *([step.judge_of] if step.judge_of else [])]:
                if name not in known:
                    raise PlanError(f"Step '{step.name}' depends on '{name}', which is not an earlier step.")
            names = scope_names(input_columns, earlier, judge=bool(step.judge_of))
            fields = template_fields(step.row_template) if step.row_template else list(step.columns)
            unknown = [f for f in fields if f not in names]
            if unknown:
                shown = ", ".join(sorted(names)[:30])
                raise PlanError(
                    f"Step '{step.name}' uses {', '.join('{' + u + '}' for u in unknown)}, which is neither a column "
                    f"nor an earlier step's output. Available: {shown}."
                )
            if step.run_if:
                try:
                    check_condition(step.run_if, {n for n in names if "." not in n} | {ROW})
                except ConditionError as exc:
                    raise PlanError(f"Step '{step.name}': {exc}") from exc
            earlier.append(step)

    def with_sent(self) -> Plan:
        """The plan with exactly what each (step, arm) will send, computed once and recorded."""
        sent = {}
        for step in self.steps:
            for name in step.arms:
                arm = self.arm(name)
                params = request_params(
                    arm.provider,
                    arm.model,
                    temperature=arm.temperature,
                    max_tokens=arm.max_tokens,
                    json_mode=step.structured,
                    response_schema=json_schema(step.output_schema) if step.output_schema else None,
                )
                system = system_message(step.instruction, step.output_schema, step.json_mode)
                sent[f"{step.name}/{arm.name}"] = Sent(arm.model, system, params)
        return replace(self, sent=sent)

    def record(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "arms": [asdict(a) for a in self.arms],
            "steps": [
                {
                    **asdict(s),
                    "arms": list(s.arms),
                    "columns": list(s.columns),
                    "compare_on": list(s.compare_on),
                    "examples": [dict(e) for e in s.examples],
                }
                for s in self.steps
            ],
            "sent": {k: asdict(v) for k, v in self.sent.items()},
            "codebook": self.codebook,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Plan:
        arms = tuple(Arm(**a) for a in record["arms"])
        steps = tuple(
            Step(
                **{
                    **s,
                    "arms": tuple(s["arms"]),
                    "columns": tuple(s.get("columns") or ()),
                    "compare_on": tuple(s.get("compare_on") or ()),
                    "examples": tuple(dict(e) for e in s.get("examples") or ()),  # plans before examples have none
                    "after": None if s.get("after") is None else tuple(s["after"]),
                }
            )
            for s in record["steps"]
        )
        sent = {k: Sent(**v) for k, v in (record.get("sent") or {}).items()}
        return cls(str(record.get("tool") or "pipeline"), arms, steps, sent, record.get("codebook"))

    @classmethod
    def of(cls, run: Run) -> Plan:
        """The plan a run was recorded with; a one-model run's plan is read from its own columns."""
        if run.plan:
            return cls.from_record(run.plan)
        from .settings import SentRequest

        request = SentRequest.of(run)
        arm = Arm(
            "model",
            run.provider,
            run.model,
            endpoint={k: v for k, v in run.connection.items() if k != "provider" and v},
            temperature=run.params.get("temperature"),
            max_tokens=run.params.get("max_tokens"),
        )
        step = Step(
            "output",
            run.system_prompt,
            ("model",),
            row_template=run.row_template,
            columns=tuple(run.columns),
            output_schema=run.output_schema,
            json_mode=bool(run.params.get("json_mode")),
            examples=request.examples,
        )
        return cls(run.kind, (arm,), (step,), {"output/model": Sent(run.model, request.system, request.params)})


def scope_names(input_columns: Sequence[str], earlier: Sequence[Step], *, judge: bool) -> set[str]:
    """What a step's template and condition may name: columns, earlier steps and their fields."""
    names = set(input_columns)
    for step in earlier:
        names.add(step.name)
        names.update(f"{step.name}.{f}" for f in step.fields)
    if judge:
        names.update({AGREED, ANSWERS})
    return names


def _unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if not name.strip():
            raise PlanError(f"Every {what} needs a name.")
        if name in seen:
            raise PlanError(f"Two {what}s are named '{name}'; names must differ.")
        seen.add(name)
