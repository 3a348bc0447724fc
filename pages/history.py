"""History: every run across sessions, what it sent, its rows and logs, and what to do next."""

import json
from datetime import datetime, time, timedelta

import pandas as pd
import streamlit as st

import handai_ui as ui
from handai_db import ACTIVE_STATUSES, RUN_STATUSES, RunFilter
from handai_engine.batch import summary
from providers import PROVIDERS
from research.tools import TOOLS

ui.frame()
st.title("History", anchor=False)
db = ui.db()
tab_runs, tab_sessions, tab_stats = st.tabs(["Runs", "Sessions", "Statistics"])


def open_run(run_id: int) -> None:
    """Show `run_id` below (also from a widget callback): the picker says so, the table's selection starts over."""
    st.session_state["hist_run"] = st.session_state["hist_open"] = run_id
    st.session_state.pop("hist_table", None)


# -- runs -----------------------------------------------------------------------------------------
with tab_runs:
    ui.bundle_rerun("hist", open_run)
    c = st.columns(4)
    statuses = c[0].multiselect("Status", RUN_STATUSES, key="hist_status")
    kinds = c[1].multiselect("Kind", ["transform", "generate", *TOOLS], key="hist_kind")
    providers = c[2].multiselect(
        "Provider", list(PROVIDERS), format_func=lambda p: PROVIDERS[p].name, key="hist_provider"
    )
    dates = c[3].date_input("Dates", value=(), key="hist_dates")
    flt = RunFilter(status=statuses, kind=kinds, provider=providers)
    if isinstance(dates, tuple) and len(dates) == 2:
        flt.since = datetime.combine(dates[0], time.min)
        flt.until = datetime.combine(dates[1], time.min) + timedelta(days=1)
    runs = db.list_runs(flt)
    if not runs:
        st.info("No runs yet. Start one on the Transform, Generate or Compare page.", icon=":material/history:")
    else:
        batches = ui.engine().batch_states([r.id for r in runs])
        table = pd.DataFrame(
            [
                {
                    "run": r.id,
                    "created": r.created_at,
                    "status": r.status,
                    "kind": r.kind,
                    "rows": ui.input_rows(r),
                    "succeeded": r.succeeded,
                    "failed": r.failed,
                    "tokens": r.tokens_in + r.tokens_out,
                    "cost $": float("nan") if r.cost_usd is None else r.cost_usd,  # blank, not "None"
                    "name": r.name,
                    "provider": ui.providers_of(r),
                    "model": ui.models_of(r),
                    "steps": ui.steps_of(r),
                    "input": r.input_name,
                    "cached": r.cache_hits,
                    "batches": summary(batches.get(r.id, [])),
                }
                for r in runs
            ]
        )
        cells = "Answers (cells): one per row, or per row, step and model for a run of several models."
        picked = st.dataframe(
            table,
            hide_index=True,
            width="stretch",
            column_config={
                "succeeded": st.column_config.NumberColumn("succeeded", help=cells),
                "failed": st.column_config.NumberColumn("failed", help=cells),
                "model": st.column_config.TextColumn("model", help="The model, or every model of the run."),
                "steps": st.column_config.TextColumn("steps", help="A pipeline's steps, in order."),
                "batches": st.column_config.TextColumn(
                    "batches", help="A run sent through the provider's Batch API: its batches by state."
                ),
            },
            column_order=[c for c in table.columns if c not in ("steps", "batches") or table[c].any()],
            on_select="rerun",
            selection_mode="single-row",
            key="hist_table",
        )
        ids = [r.id for r in runs]
        selected_rows = picked.selection.rows if picked else []
        default = ids.index(st.session_state.get("hist_run", ids[0])) if st.session_state.get("hist_run") in ids else 0
        if selected_rows:
            default = selected_rows[0]
        if st.session_state.get("hist_open") not in ids:  # e.g. a run the filters now hide
            st.session_state.pop("hist_open", None)
        run_id = st.selectbox("Open run", ids, index=default, format_func=lambda i: f"Run #{i}", key="hist_open")
        st.session_state["hist_run"] = run_id
        run = db.get_run(run_id)
        st.divider()
        ui.reattach_waiting(run_id)
        ui.run_controls("history", run_id)
        with st.expander("What was sent", icon=":material/settings_input_component:"):
            ui.what_was_sent(run)
        ui.run_results("history", run_id, duplicates=run.kind == "generate")
        with st.expander("Log", icon=":material/receipt_long:"):
            logs = db.logs(run_id)
            st.dataframe(
                pd.DataFrame([{"time": lg.ts, "level": lg.level, "message": lg.message} for lg in logs]),
                hide_index=True,
                width="stretch",
            )
        c = st.columns(3)
        page_title = (
            TOOLS[run.kind].title if run.kind in TOOLS else "Generate" if run.kind == "generate" else "Transform"
        )
        if c[1].button(
            f"Load these settings into {page_title}",
            icon=":material/upload:",
            key="hist_load",
            help="Fills the page's models, instruction, columns, template and output fields (and, for one model, "
            "the sidebar's provider and parameters) with this run's.",
        ):
            st.switch_page(ui.load_into_page(run))
        if c[0].button(
            "New run with the same settings",
            icon=":material/content_copy:",
            key="hist_clone",
            disabled=run.status in ACTIVE_STATUSES,
        ) and (new_id := ui.clone_run(run)):
            st.session_state["hist_run"] = new_id
            st.rerun()
        with c[2].popover("Delete run", icon=":material/delete:", disabled=run.status in ACTIVE_STATUSES):
            st.write(f"Delete run #{run_id} and its {ui.input_rows(run):,} rows? This cannot be undone.")
            if st.button("Delete", type="primary", key="hist_delete_confirm"):
                db.delete_run(run_id)
                st.session_state.pop("hist_run", None)
                st.rerun()

# -- sessions -------------------------------------------------------------------------------------
with tab_sessions:
    sessions = db.list_sessions()
    if not sessions:
        st.info("No sessions yet.")
    else:
        sid = st.selectbox(
            "Session",
            [s.id for s in sessions],
            key="hist_session",
            format_func=lambda i: next(f"{s.name} (#{s.id})" for s in sessions if s.id == i),
        )
        session = db.get_session(sid)
        name = st.text_input("Name", value=session.name, key=f"hist_session_name_{sid}")
        if st.button("Rename", icon=":material/edit:", key="hist_rename") and name.strip():
            db.rename_session(sid, name.strip())
            st.rerun()
        session_runs = db.list_runs(RunFilter(session_id=sid))
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "run": r.id,
                        "status": r.status,
                        "kind": r.kind,
                        "model": ui.models_of(r),
                        "rows": ui.input_rows(r),
                        "succeeded": r.succeeded,
                        "failed": r.failed,
                    }
                    for r in session_runs
                ]
            ),
            hide_index=True,
            width="stretch",
        )
        st.download_button(
            "Export session as JSON",
            icon=":material/download:",
            key="hist_export_session",
            data=lambda: json.dumps(db.export_session(sid), ensure_ascii=False, indent=1, default=str),
            file_name=f"handai_session_{sid}.json",
            mime="application/json",
            on_click="ignore",
        )

# -- statistics -----------------------------------------------------------------------------------
with tab_stats:
    stats = db.run_stats()
    if stats.empty:
        st.info("Statistics appear after the first run.")
    else:
        created = pd.to_datetime(stats["created_at"])
        one_day = created.dt.date.nunique() == 1
        stats["when"] = created.dt.strftime("%H:00") if one_day else created.dt.date.astype(str)
        per = "hour" if one_day else "day"
        c = st.columns(2)
        c[0].markdown(f"**Runs per {per}**" + (f" ({created.dt.date.iloc[0]:%Y-%m-%d})" if one_day else ""))
        c[0].bar_chart(stats.groupby("when").size().rename("runs"), x_label=per, y_label="runs")
        c[1].markdown(f"**Rows per {per}**")
        c[1].bar_chart(
            stats.groupby("when")[["succeeded", "failed"]].sum(),
            x_label=per,
            y_label="rows",
            color=["#2e7d32", "#c62828"],
        )
        # Per model, not per run: a run of several models counts each of its arms under its own.
        arms = db.arm_stats()
        arms["label"] = arms["provider"].map(ui.provider_name) + " / " + arms["model"]
        by_model = arms.groupby("label")[["succeeded", "failed"]].sum()
        by_model["success rate %"] = (
            100 * by_model["succeeded"] / (by_model["succeeded"] + by_model["failed"]).where(lambda s: s > 0)
        ).round(1)
        by_model["mean latency (ms)"] = arms.groupby("label")["avg_latency_ms"].mean().round(0)
        st.markdown("**By provider / model**")
        st.dataframe(by_model.fillna(""), width="stretch")
        c = st.columns(2)
        c[0].markdown("**Success rate by provider / model**")
        c[0].bar_chart(by_model["success rate %"].fillna(0), horizontal=True)
        c[1].markdown("**Mean latency (ms) by provider / model**")
        c[1].bar_chart(by_model["mean latency (ms)"].fillna(0), horizontal=True)
        kinds = db.error_kind_totals()
        if kinds:
            st.markdown("**Failed rows by error kind**")
            st.bar_chart(pd.Series(kinds, name="rows"))
