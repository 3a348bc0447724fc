"""Pipeline: ordered steps, each with its own model, instruction, output fields and `run_if`; a
later step can use `{step}` or `{step.field}` of an earlier one. A spec is plain JSON, so it can
be saved, loaded, exported and run by `handai_cli.py pipeline SPEC.json FILE`:

    {"steps": [{"name": "relevant", "model": "openai:gpt-4o-mini", "instruction": "…",
                "columns": ["text"], "fields": [{"name": "relevant", "type": "boolean"}]},
               {"name": "code", "model": "openai:gpt-4o", "instruction": "…",
                "template": "Text: {text}", "run_if": "relevant.relevant == True",
                "fields": [{"name": "code", "type": "category", "labels": "praise, complaint"}],
                "examples": [{"input": "Text: fast and kind", "output": "{\\"code\\": \\"praise\\"}"}]}],
     "temperature": null, "max_tokens": null}

A step's `examples` are few-shot pairs (the input as the row is sent, the expected output), sent
before each row as earlier turns of the conversation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from handai_engine import Plan, PlanError, Step
from handai_prompts import TemplateError, make_schema

from .arms import ModelSpecError, arm_names, make_arms, parse_model
from .tables import WideTable

STEP_KEYS = {"name", "model", "instruction", "columns", "template", "fields", "run_if", "json_mode", "examples"}


def pipeline_plan(spec: Mapping[str, Any], *, endpoints: dict[str, dict[str, Any]] | None = None) -> Plan:
    """The plan of a pipeline spec (see the module docstring); raises PlanError saying what to fix."""
    steps_in = spec.get("steps")
    if not isinstance(steps_in, list) or not steps_in:
        raise PlanError('A pipeline spec needs "steps": a list of at least one step.')
    models: list[tuple[str, str]] = []
    for n, raw in enumerate(steps_in, 1):
        if not isinstance(raw, Mapping):
            raise PlanError(f"Step {n} must be an object with name, model and instruction.")
        unknown = set(raw) - STEP_KEYS
        if unknown:
            raise PlanError(
                f"Step {n} has unknown keys: {', '.join(sorted(unknown))}. Allowed: {', '.join(sorted(STEP_KEYS))}."
            )
        try:
            choice = parse_model(str(raw.get("model") or ""))
        except ModelSpecError as exc:
            raise PlanError(f"Step {n} ({raw.get('name') or 'unnamed'}): {exc}") from exc
        if choice not in models:
            models.append(choice)
    arms = make_arms(
        models,
        endpoints=endpoints,
        temperature=spec.get("temperature"),
        max_tokens=spec.get("max_tokens"),
    )
    by_choice = dict(zip(models, arm_names([m for _, m in models]), strict=True))
    steps = []
    for n, raw in enumerate(steps_in, 1):
        name = str(raw.get("name") or f"step{n}")
        if not str(raw.get("instruction") or "").strip():
            raise PlanError(f"Step '{name}' needs an instruction.")
        try:
            schema = make_schema(raw.get("fields") or []) if raw.get("fields") else None
        except TemplateError as exc:
            raise PlanError(f"Step '{name}': {exc}") from exc
        steps.append(
            Step(
                name,
                str(raw["instruction"]),
                (by_choice[parse_model(str(raw["model"]))],),
                row_template=raw.get("template") or None,
                columns=tuple(raw.get("columns") or ()),
                output_schema=schema if schema and schema["fields"] else None,
                json_mode=bool(raw.get("json_mode")),
                run_if=(raw.get("run_if") or "").strip() or None,
                examples=_examples(raw.get("examples"), name),
            )
        )
    return Plan("pipeline", tuple(arms), tuple(steps))


def spec_of(plan: Plan) -> dict[str, Any]:
    """A plan as the JSON spec it came from (what the page saves and exports)."""
    first = plan.arms[0]
    steps = []
    for step in plan.steps:
        arm = plan.arm(step.arms[0])
        fields = [
            {
                "name": name,
                "type": f.get("type", "string"),
                **({"description": f["description"]} if f.get("description") else {}),
                **({"labels": ", ".join(f["labels"])} if f.get("labels") else {}),
            }
            for name, f in ((step.output_schema or {}).get("fields") or {}).items()
        ]
        entry: dict[str, Any] = {"name": step.name, "model": arm.label, "instruction": step.instruction}
        if step.row_template:
            entry["template"] = step.row_template
        elif step.columns:
            entry["columns"] = list(step.columns)
        if fields:
            entry["fields"] = fields
        if step.json_mode:
            entry["json_mode"] = True
        if step.run_if:
            entry["run_if"] = step.run_if
        if step.examples:
            entry["examples"] = [dict(e) for e in step.examples]
        steps.append(entry)
    return {"steps": steps, "temperature": first.temperature, "max_tokens": first.max_tokens}


def load_spec(text: str) -> dict[str, Any]:
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(
            f"The pipeline spec is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}."
        ) from exc
    if not isinstance(spec, dict):
        raise PlanError('A pipeline spec is a JSON object with "steps".')
    return spec


def flow_dot(plan: Plan) -> str:
    """The steps as a Graphviz flow (drawn by st.graphviz_chart): each step with its model and
    condition, arrows from the steps it needs."""
    lines = ["digraph pipeline {", "rankdir=LR;", 'node [shape=box, style="rounded", fontname="sans-serif"];']
    for step in plan.steps:
        label = f"{step.name}\\n{plan.arm(step.arms[0]).label}"
        if step.run_if:
            label += f"\\nif {step.run_if}"
        lines.append(f'"{step.name}" [label="{_dot(label)}"];')
        for d in plan.depends_on(step):
            lines.append(f'"{plan.steps[d].name}" -> "{step.name}";')
    lines.append("}")
    return "\n".join(lines)


def pipeline_table(plan: Plan, input_columns: Sequence[str]) -> WideTable:
    return WideTable(plan, list(input_columns))


def _examples(raw: Any, step: str) -> tuple[dict[str, str], ...]:
    """A step's few-shot pairs, each {"input", "output"} as text; anything else says what to fix."""
    if not raw:
        return ()
    if not isinstance(raw, list) or not all(
        isinstance(e, Mapping)
        and set(e) <= {"input", "output"}
        and isinstance(e.get("input", ""), str)
        and isinstance(e.get("output", ""), str)
        for e in raw
    ):
        raise PlanError(f'Step \'{step}\': "examples" is a list of {{"input": "…", "output": "…"}} pairs of text.')
    return tuple({"input": e.get("input", ""), "output": e.get("output", "")} for e in raw)


def _dot(text: str) -> str:
    return text.replace('"', '\\"')
