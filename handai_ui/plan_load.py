"""A recorded run of several models or steps loaded back into its page (History's "Load these
settings"): Compare's and Consensus's instruction, rows sent, fields and models, Pipeline's spec.
The sidebar's parameters are left as they are."""

from __future__ import annotations

from typing import Any

import streamlit as st

from handai_db import Run
from handai_engine import Plan, Step
from research.consensus import CODERS, JUDGE
from research.pipeline import spec_of

from .consensus_form import JUDGE_ALWAYS, JUDGE_DISAGREEMENTS, SAMPLES, SEVERAL
from .model_picker import Model
from .pipeline_editor import seed_spec
from .schema_editor import schema_rows
from .services import db
from .sidebar import run_page
from .state import set_page_widget
from .task_form import MODES


def _codebook(prefix: str, codebook: dict[str, Any] | None) -> bool:
    """The run's codebook version chosen again on the page, with its task and options; False when
    the run had none, or its codebook is no longer saved."""
    ref = (codebook or {}).get("ref") or {}
    if not ref.get("id") or db().codebook_version(int(ref["id"]), ref.get("version")) is None:
        return False
    set_page_widget(f"{prefix}_use_codebook", True)
    set_page_widget(f"{prefix}_codebook", ref["name"])
    set_page_widget(f"{prefix}_cb_version", ref["version"])
    st.session_state[f"{prefix}_cb_for"] = int(ref["id"])  # the version belongs to this codebook
    set_page_widget(f"{prefix}_rationale", bool(codebook.get("rationale", True)))
    set_page_widget(f"{prefix}_evidence", bool(codebook.get("evidence", True)))
    set_page_widget(f"{prefix}_prompt", codebook.get("task") or "")
    return True


def _task(prefix: str, step: Step, codebook: dict[str, Any] | None = None) -> None:
    if not _codebook(prefix, codebook):
        set_page_widget(f"{prefix}_use_codebook", False)
        set_page_widget(f"{prefix}_prompt", step.instruction)
    set_page_widget(f"{prefix}_mode", MODES[1] if step.row_template else MODES[0])
    if step.row_template:
        set_page_widget(f"{prefix}_template", step.row_template)
    if step.columns:
        set_page_widget(f"{prefix}_columns", list(step.columns))
    st.session_state[f"{prefix}_fields_rows"] = schema_rows(step.output_schema)
    st.session_state.pop(f"{prefix}_fields", None)
    st.session_state[f"{prefix}_examples_rows"] = [dict(e) for e in step.examples]
    st.session_state.pop(f"{prefix}_examples", None)


def _model(key: str, model: Model) -> None:
    set_page_widget(f"{key}_provider", model[0])
    set_page_widget(f"{key}_model_{model[0]}", model[1])


def _models(prefix: str, models: list[Model]) -> None:
    set_page_widget(f"{prefix}_count", len(models))
    for i, model in enumerate(models):
        _model(f"{prefix}_{i}", model)


def load_plan_into_page(run: Run) -> str:
    """Fill the run's tool page with its recorded plan; returns the page."""
    plan = Plan.of(run)
    first = plan.steps[0]
    coders = [(a.provider, a.model) for a in (plan.arm(name) for name in first.arms)]
    if run.kind == "compare":
        _task("cmp", first, plan.codebook)
        _models("cmp", coders)
    elif run.kind == "coder":
        _task("qc", first, plan.codebook)
        _model("qc_model", coders[0])
    elif run.kind == "consensus":
        _task("cns", first, plan.codebook)
        samples = plan.arm(first.arms[0]).samples
        set_page_widget("cns_coders", SAMPLES if samples > 1 else SEVERAL)
        if samples > 1:
            _model("cns_single", coders[0])
            set_page_widget("cns_samples", samples)
        else:
            _models("cns", coders)
        judge = next((s for s in plan.steps if s.name == JUDGE and s.judge_of == CODERS), None)
        set_page_widget("cns_use_judge", judge is not None)
        if judge is not None:
            arm = plan.arm(judge.arms[0])
            _model("cns_judge", (arm.provider, arm.model))
            set_page_widget("cns_judge_when", JUDGE_ALWAYS if judge.run_if is None else JUDGE_DISAGREEMENTS)
    else:
        seed_spec("pl", spec_of(plan))
    return run_page(run.kind)
