"""A draft codebook generated from data by one model, in two normal runs (both in History):
run 1 reads the texts in chunks and names their themes; run 2 merges every chunk's themes into
codes. The draft opens in the editor, to be checked and edited before it is saved.

Run 2 starts by itself when every chunk of run 1 succeeded. When some failed it waits: their
texts were not seen, so the user chooses between retrying them (run 1's own Retry button) and
consolidating the chunks that succeeded. The job (`cbg_job`) lives in this browser session."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from handai_db import ACTIVE_STATUSES, RowStatus, RunStatus
from handai_engine import Plan, PlanError
from research.codebook import CodebookError
from research.codebook_gen import MODES, chunk_rows, consolidate_plan, consolidation_rows, draft_codebook, themes_plan

from .codebook_editor import open_in_editor
from .connections import connections
from .controls import run_controls, submit_run
from .data_source import Data, data_keys, data_section
from .model_picker import connection_problem, endpoints_for, model_row, row_keys
from .services import db, engine, session_id
from .sidebar import Choice
from .state import keep, kept
from .text import md

PREFIX = "cbg"
JOB = f"{PREFIX}_job"
THEMES, CONSOLIDATE = "codebook_themes", "codebook_consolidate"
DEFAULT_SAMPLE = 400  # texts read by default: a few chunks, and a consolidation call that fits a context window
MODE_HELP = {
    "inductive": "The model finds the themes in the texts and keeps up to N codes.",
    "deductive": "You give the themes; the model writes their definitions, criteria and examples from the texts.",
    "hybrid": "You give some themes; the model keeps them and adds the new themes it finds, up to N codes in all.",
}
FORM_KEYS = tuple(
    f"{PREFIX}_{name}"
    for name in ("column", "mode", "seeds", "n", "multi", "focus", "chars", "texts", "read", "read_seed", "name")
)


def generator_keys() -> tuple[str, ...]:
    """The widget keys the generator draws that are kept across pages."""
    return (*data_keys(PREFIX), *FORM_KEYS, *row_keys(f"{PREFIX}_model"))


def codebook_generator(choice: Choice) -> None:
    """The generator's form and, once started, its two runs and the draft they make."""
    keep(*generator_keys())
    data = data_section(PREFIX)
    if data is not None:
        _form(data, choice)
    kept(*generator_keys())
    job = st.session_state.get(JOB)
    if job:
        _job_view(job, choice)


def _form(data: Data, choice: Choice) -> None:
    column = st.selectbox("Text column", data.columns, key=f"{PREFIX}_column", help="The texts to read for themes.")
    mode = st.segmented_control(
        "Mode", MODES, default=MODES[0], required=True, key=f"{PREFIX}_mode", format_func=str.capitalize
    )
    st.caption(MODE_HELP[mode])
    seeds: list[str] = []
    if mode != "inductive":
        text = st.text_area(
            "Given themes, one per line", key=f"{PREFIX}_seeds", height=110, placeholder="price\nquality\ndelivery"
        )
        seeds = [line.strip() for line in text.splitlines() if line.strip()]
    c = st.columns(2, vertical_alignment="bottom")
    n_codes = int(c[0].number_input("Number of codes (at most)", 1, 50, 8, key=f"{PREFIX}_n"))
    multi_label = c[1].toggle(
        "Several codes may apply (multi-label)", key=f"{PREFIX}_multi", help="Codes may then overlap in scope."
    )
    focus = st.text_area(
        "Focus or research question (optional)",
        key=f"{PREFIX}_focus",
        height=70,
        placeholder="e.g. Why do customers return products?",
    )
    with st.expander("Chunks", icon=":material/view_agenda:"):
        st.caption("The texts are sent in chunks, one call each; a longer text than a chunk holds is cut, and says so.")
        k = st.columns(2)
        max_chars = int(k[0].number_input("Characters per chunk", 1000, 200_000, 8000, 1000, key=f"{PREFIX}_chars"))
        max_texts = int(k[1].number_input("Texts per chunk", 1, 1000, 40, key=f"{PREFIX}_texts"))
    texts = data.df[column].fillna("").astype(str)
    texts = texts[texts.str.strip() != ""]
    c = st.columns(2, vertical_alignment="bottom")
    read = int(
        c[0].number_input(
            "Texts to read",
            1,
            max(1, len(texts)),
            min(len(texts), DEFAULT_SAMPLE) or 1,
            key=f"{PREFIX}_read",
            help="Fewer than all: a random sample (seeded, so it can be drawn again). Themes saturate long before "
            "tens of thousands of texts, and every chunk's themes must fit in the one consolidation call.",
        )
    )
    seed = int(
        c[1].number_input("Sample seed", 0, 2**31 - 1, 0, key=f"{PREFIX}_read_seed", disabled=read >= len(texts))
    )
    if read < len(texts):
        texts = texts.sample(n=read, random_state=seed).sort_index()
    rows = chunk_rows(texts.tolist(), max_chars=max_chars, max_texts=max_texts)
    model = model_row(f"{PREFIX}_model")
    name = st.text_input(
        "Name of the draft", key=f"{PREFIX}_name", placeholder=f"Codebook from {data.name}"
    ).strip() or (f"Codebook from {data.name}")
    st.caption(
        f":material/info: {sum(r['n_texts'] for r in rows):,} texts in {len(rows):,} chunks: {len(rows):,} calls to "
        "find themes, then one to consolidate them into codes."
    )
    problem = _problem(rows, model, mode, seeds)
    if problem:
        st.caption(f":material/info: {md(problem)}")
    if not st.button(
        "Generate a draft codebook",
        icon=":material/auto_awesome:",
        type="primary",
        disabled=bool(problem),
        key=f"{PREFIX}_start",
    ):
        return
    spec = {"mode": mode, "seeds": seeds, "focus": focus.strip(), "n_codes": n_codes, "multi_label": multi_label}
    _start_themes(data, rows, model, name, spec, choice)


def _problem(rows: list[dict[str, Any]], model: tuple[str, str], mode: str, seeds: list[str]) -> str | None:
    if not rows:
        return "The text column is empty; choose the column that holds the texts."
    if not model[1]:
        return "Choose a model."
    if mode != "inductive" and not seeds:
        return f"The {mode} mode starts from given themes: list at least one."
    return connection_problem([model])


def _start_themes(
    data: Data, rows: list[dict[str, Any]], model: tuple[str, str], name: str, spec: dict[str, Any], choice: Choice
) -> None:
    endpoints = endpoints_for([model])
    try:
        plan = themes_plan(
            model,
            mode=spec["mode"],
            seeds=spec["seeds"],
            focus=spec["focus"],
            temperature=choice.temperature,
            max_tokens=choice.max_tokens,
            endpoints=endpoints,
        )
    except PlanError as exc:
        st.error(md(exc), icon=":material/error:")
        return
    started = _submit(THEMES, rows, plan, model, choice, data.name, data.digest, f"Codebook themes: {name}")
    if started:
        st.session_state[JOB] = {
            **spec,
            "name": name,
            "model": list(model),
            "endpoints": endpoints,
            "themes": st.session_state[f"{THEMES}_run_id"],
            "consolidate": None,
            "drafted": False,
        }
        st.rerun()


# -- the job: run 1, run 2, the draft ----------------------------------------------------------------
def _job_view(job: dict[str, Any], choice: Choice) -> None:
    st.divider()
    c = st.columns([4, 1], vertical_alignment="center")
    c[0].markdown(f"**Generating '{md(job['name'])}'** · {md(job['mode'])} · at most {job['n_codes']} codes")
    if c[1].button(
        "Start over",
        icon=":material/restart_alt:",
        key=f"{PREFIX}_reset",
        help="Forget this job here; its runs stay in History.",
    ):
        st.session_state.pop(JOB, None)
        st.rerun()
    themes = db().get_run(job["themes"])
    if themes is None:
        st.session_state.pop(JOB, None)
        return
    st.markdown("**Run 1 · themes in each chunk**")
    run_controls(THEMES, themes.id)
    if themes.status in ACTIVE_STATUSES:
        return
    if themes.status != RunStatus.COMPLETED:
        st.info(f"Run 1 is {themes.status}: resume it above to go on to the codes.", icon=":material/info:")
        return
    results = db().results(themes.id)
    outputs = [r.parsed if r.status == RowStatus.SUCCEEDED else None for r in results]
    failed = sum(o is None for o in outputs)
    if failed:
        st.warning(
            f"{failed} of {len(outputs)} chunks failed; their texts were not seen. Retry them above, or build the "
            "codes from the chunks that succeeded.",
            icon=":material/warning:",
        )
    if job["consolidate"] is None:
        if failed and not st.button(
            f"Build the codes from the {len(outputs) - failed} chunks that succeeded",
            icon=":material/merge:",
            key=f"{PREFIX}_consolidate_{themes.id}",
            disabled=failed == len(outputs),
        ):
            return
        _start_consolidation(job, themes.id, outputs, choice)
        return
    st.markdown("**Run 2 · the chunks' themes merged into codes**")
    run_controls(CONSOLIDATE, job["consolidate"])
    _draft(job, themes.id, failed, len(outputs))


def _start_consolidation(job: dict[str, Any], themes_id: int, outputs: list[Any], choice: Choice) -> None:
    model = (job["model"][0], job["model"][1])
    try:
        rows = consolidation_rows(outputs)
        plan = consolidate_plan(
            model,
            mode=job["mode"],
            n_codes=job["n_codes"],
            seeds=job["seeds"],
            multi_label=job["multi_label"],
            focus=job["focus"],
            temperature=choice.temperature,
            max_tokens=choice.max_tokens,
            endpoints=job["endpoints"],
        )
    except (CodebookError, PlanError) as exc:
        st.error(md(exc), icon=":material/error:")
        return
    input_name, name = f"themes of run #{themes_id}", f"Codebook codes: {job['name']}"
    started = _submit(CONSOLIDATE, rows, plan, model, choice, input_name, f"run-{themes_id}", name)
    if started:
        job["consolidate"] = st.session_state[f"{CONSOLIDATE}_run_id"]
        st.rerun()


def _submit(
    kind: str,
    rows: list[dict[str, Any]],
    plan: Plan,
    model: tuple[str, str],
    choice: Choice,
    input_name: str,
    input_hash: str,
    name: str,
) -> bool:
    """One of the generator's two runs written to the ledger and started, like any page's run."""
    conns = connections([model[0]])
    return submit_run(
        kind,
        lambda: engine().create_plan_run(
            pd.DataFrame(rows),
            plan,
            conns,
            choice.settings(),
            input_name=input_name,
            input_hash=input_hash,
            session_id=session_id(),
            name=name,
        ),
        conns,
    )


def _draft(job: dict[str, Any], themes_id: int, failed: int, chunks: int) -> None:
    """Run 2's answer opened in the editor once (later reruns leave the user's edits alone)."""
    run = db().get_run(job["consolidate"])
    if run is None or run.status in ACTIVE_STATUSES:
        return
    answer = next((r for r in db().results(run.id) if r.status == RowStatus.SUCCEEDED), None)
    if answer is None:
        st.error("Run 2 gave no codes: retry it above, or start over with another model.", icon=":material/error:")
        return
    seen = f" from {chunks - failed} of {chunks} chunks ({failed} failed; their texts were not seen)" if failed else ""
    if not job["drafted"]:
        try:
            book = draft_codebook(
                answer.parsed, name=job["name"], multi_label=job["multi_label"], mode=job["mode"], seeds=job["seeds"]
            )
        except CodebookError as exc:
            st.error(md(exc), icon=":material/error:")
            return
        open_in_editor(
            book,
            origin=f"the draft generated by runs #{themes_id} and #{run.id}",
            source=f"generated by runs #{themes_id} and #{run.id}",
            run_id=run.id,
        )
        job["drafted"] = True
    st.success(
        f"The draft{seen} is in the editor below: read every code, edit what needs it, then save.",
        icon=":material/check_circle:",
    )
