"""A pipeline's steps edited as widgets, in order (name, model, instruction from the saved library
or written here, few-shot examples, how rows are sent, output fields, run_if), and the spec they
make (research/pipeline.py's JSON format), loaded from a file or pasted text, and exported.

Each step's widgets are keyed by a step id, so moving or removing a step keeps the others'
values. Streamlit forgets a page's widget values when the page is left; the spec made on the last
run is kept and drawn again on return."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import streamlit as st

from handai_engine import PlanError
from research.arms import ModelSpecError, parse_model
from research.pipeline import load_spec, pipeline_plan

from .instructions import examples_editor, instruction_library
from .model_picker import Model, model_row
from .schema_editor import schema_editor, schema_rows
from .task_form import MODES
from .text import md

RUN_IF_HELP = (
    'Send this step only for rows where the condition holds, e.g. relevant.relevant == True or lower(label) == "yes". '
    "Names are input columns, earlier steps ({step}) and their fields (step.field); rows that don't match cost "
    "nothing and are marked skipped."
)
TEMPLATE_HELP = "Use {column} for a cell, {step} for an earlier step's answer, {step.field} for one of its fields."


@dataclass(frozen=True)
class Edited:
    spec: dict[str, Any]
    models: list[Model]
    problem: str | None  # what is missing before the spec can run; None when complete


def _ids(prefix: str) -> list[str]:
    return st.session_state.setdefault(f"{prefix}_steps", [])


def _seeds(prefix: str) -> dict[str, list[dict[str, str]]]:
    """Each step's output fields as the editor first shows them (a data editor cannot be set)."""
    return st.session_state.setdefault(f"{prefix}_field_seeds", {})


def seed_spec(prefix: str, spec: dict[str, Any]) -> None:
    """Put a spec's steps into the widgets, as new steps (new ids), replacing the current ones."""
    state = st.session_state
    ids = []
    for step in spec.get("steps") or []:
        sid = uuid.uuid4().hex[:8]
        key = f"{prefix}_{sid}"
        state[f"{key}_name"] = str(step.get("name") or "")
        state[f"{key}_instruction"] = str(step.get("instruction") or "")
        state[f"{key}_mode"] = MODES[1] if step.get("template") else MODES[0]
        state[f"{key}_template"] = str(step.get("template") or "")
        if step.get("columns"):
            state[f"{key}_columns"] = [str(c) for c in step["columns"]]
        state[f"{key}_run_if"] = str(step.get("run_if") or "")
        state[f"{key}_json"] = bool(step.get("json_mode"))
        state[f"{key}_examples_rows"] = list(step.get("examples") or [])
        try:
            provider, model = parse_model(str(step.get("model") or ""))
        except ModelSpecError:
            pass
        else:
            state[f"{key}_provider"] = provider
            state[f"{key}_model_{provider}"] = model
        _seeds(prefix)[sid] = list(step.get("fields") or [])
        ids.append(sid)
    state[f"{prefix}_steps"] = ids
    state[f"{prefix}_temperature"] = spec.get("temperature")
    state[f"{prefix}_max_tokens"] = spec.get("max_tokens")
    state[f"{prefix}_last_spec"] = spec


def spec_loader(prefix: str) -> None:
    """Load a spec from a JSON file or pasted text; a spec that cannot be used says why, once."""
    with st.expander("Load a pipeline spec (JSON)", icon=":material/upload_file:"):
        uploaded = st.file_uploader("A spec file", type=["json"], key=f"{prefix}_spec_file")
        pasted = st.text_area("…or paste a spec", key=f"{prefix}_spec_text", height=120)
        source = None
        if st.button("Load the pasted spec", icon=":material/input:", key=f"{prefix}_spec_load"):
            source = pasted
        if uploaded is not None and st.session_state.get(f"{prefix}_spec_file_seen") != uploaded.file_id:
            st.session_state[f"{prefix}_spec_file_seen"] = uploaded.file_id
            source = uploaded.getvalue().decode("utf-8", errors="replace")
        if source is None:
            return
        try:
            spec = load_spec(source)
            pipeline_plan(spec)  # every step's model and fields readable; columns are checked with the data
        except PlanError as exc:
            st.error(md(f"This spec cannot be loaded: {exc}"), icon=":material/error:")
            return
        seed_spec(prefix, spec)
        st.rerun()


def _step(
    prefix: str, sid: str, number: int, columns: list[str], earlier: list[str]
) -> tuple[dict[str, Any], str | None]:
    """One step's widgets; its spec entry and what is wrong with it."""
    key = f"{prefix}_{sid}"
    state = st.session_state
    state.setdefault(f"{key}_name", f"step{number}")
    c = st.columns([2, 5], vertical_alignment="bottom")
    name = c[0].text_input("Step name", key=f"{key}_name", help="Later steps use it as {name} or {name.field}.")
    with c[1]:
        provider, model = model_row(key, label="Model")
    instruction_library(key, f"{key}_instruction", f"{key}_examples")
    instruction = st.text_area("Instruction", key=f"{key}_instruction", height=90)
    with st.expander("Examples (optional): input → expected output", icon=":material/school:"):
        st.caption("Sent before each row as earlier turns of the conversation.")
        examples = examples_editor(f"{key}_examples", state.get(f"{key}_examples_rows", []))
    state.setdefault(f"{key}_mode", MODES[0])
    mode = st.segmented_control("Send each row as", MODES, key=f"{key}_mode")
    entry: dict[str, Any] = {
        "name": name.strip(),
        "model": f"{provider}:{model}" if model else "",
        "instruction": instruction,
    }
    if mode == MODES[1]:
        entry["template"] = st.text_area("Row template", key=f"{key}_template", height=70, help=TEMPLATE_HELP)
    else:
        options = [*columns, *earlier]
        chosen = state.get(f"{key}_columns")
        state[f"{key}_columns"] = [c for c in chosen if c in options] if isinstance(chosen, list) else list(columns)
        entry["columns"] = st.multiselect("Columns sent (and earlier steps' answers)", options, key=f"{key}_columns")
    with st.expander("Output fields and condition", icon=":material/data_object:"):
        schema, problem = schema_editor(f"{key}_fields", _seeds(prefix).get(sid, []))
        if problem:
            st.warning(md(problem), icon=":material/warning:")
        run_if = st.text_input("Run only if (optional)", key=f"{key}_run_if", help=RUN_IF_HELP).strip()
        json_mode = st.checkbox("Ask for a JSON reply even without fields", key=f"{key}_json")
    if schema:
        entry["fields"] = schema_rows(schema)
    if run_if:
        entry["run_if"] = run_if
    if json_mode:
        entry["json_mode"] = True
    if examples:
        entry["examples"] = examples
    label = f"Step {number} ({name or 'unnamed'})"
    if problem:
        return entry, f"{label}: {problem}"
    if not model:
        return entry, f"{label} needs a model."
    if not instruction.strip():
        return entry, f"{label} needs an instruction."
    return entry, None


def _heading(prefix: str, sid: str, index: int, ids: list[str]) -> None:
    """ "Step N", with move up, move down and remove at its right."""
    c = st.columns([12, 1, 1, 1], vertical_alignment="center")
    c[0].markdown(f"**Step {index + 1}**")
    moves = (
        (c[1], "up", ":material/arrow_upward:", index > 0),
        (c[2], "down", ":material/arrow_downward:", index < len(ids) - 1),
    )
    for column, what, icon, possible in moves:
        if column.button("", icon=icon, key=f"{prefix}_{sid}_{what}", disabled=not possible, help=f"Move {what}"):
            other = index - 1 if what == "up" else index + 1
            ids[index], ids[other] = ids[other], ids[index]
            st.rerun()
    if c[3].button("", icon=":material/delete:", key=f"{prefix}_{sid}_remove", disabled=len(ids) == 1, help="Remove"):
        ids.remove(sid)
        st.rerun()


def pipeline_editor(prefix: str, columns: list[str]) -> Edited:
    """The steps as widgets, then the spec they make; a page returned to is drawn from the spec
    made on its last run."""
    ids = _ids(prefix)
    last = st.session_state.get(f"{prefix}_last_spec")
    if ids and f"{prefix}_{ids[0]}_name" not in st.session_state and last:
        seed_spec(prefix, last)
        ids = _ids(prefix)
    if not ids:
        ids.append(uuid.uuid4().hex[:8])
    steps, models, problems = [], [], []
    for index, sid in enumerate(list(ids)):
        with st.container(border=True):
            _heading(prefix, sid, index, ids)
            earlier = [
                n
                for s in steps
                if s["name"]
                for n in (s["name"], *(f"{s['name']}.{f['name']}" for f in s.get("fields", [])))
            ]
            entry, problem = _step(prefix, sid, index + 1, columns, earlier)
        steps.append(entry)
        problems.append(problem)
        if entry["model"]:
            models.append(parse_model(entry["model"]))
    if st.button("Add a step", icon=":material/add:", key=f"{prefix}_add"):
        ids.append(uuid.uuid4().hex[:8])
        st.rerun()
    with st.expander("Parameters for every step", icon=":material/tune:"):
        c = st.columns(2)
        temperature = c[0].number_input(
            "Temperature", 0.0, 2.0, value=None, step=0.1, key=f"{prefix}_temperature", placeholder="provider default"
        )
        max_tokens = c[1].number_input(
            "Max tokens", 1, 200_000, value=None, step=64, key=f"{prefix}_max_tokens", placeholder="provider default"
        )
        st.caption("Saved in the spec; the sidebar's temperature and max tokens do not apply to a pipeline.")
    spec = {"steps": steps, "temperature": temperature, "max_tokens": max_tokens}
    st.session_state[f"{prefix}_last_spec"] = spec
    return Edited(spec, list(dict.fromkeys(models)), next((p for p in problems if p), None))


def spec_json(spec: dict[str, Any]) -> str:
    return json.dumps(spec, ensure_ascii=False, indent=2)
