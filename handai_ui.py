"""UI pieces shared by the pages: the cached services, the provider sidebar, the run progress
fragment, and the results view with its inspector and downloads.

Pages call these and the core (engine, providers, handai_db); nothing here speaks SQL or HTTP
itself. `st.cache_resource` getters live here, never in a page file (DESIGN, Streamlit notes).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st

import handai_db
from handai_db import Database, Run
from handai_engine import Engine, Progress, RunSettings, get_engine
from handai_errors import KINDS, ErrorKind, mask_key
from handai_io import EXPORT_FORMATS, export_bytes
from handai_prompts import FIELD_TYPES, build_messages, make_schema, system_message, user_message
from providers import (
    PROVIDERS,
    Connection,
    KeyStore,
    check_key_format,
    list_models,
    local_servers_status,
    price_for,
    resolve_endpoint,
    resolve_key,
)

ACTIVE = handai_db.ACTIVE_STATUSES
RESUMABLE = ("paused", "interrupted", "cancelled", "failed")
STATUS_ICONS = {
    "queued": ":material/schedule:",
    "running": ":material/progress_activity:",
    "paused": ":material/pause_circle:",
    "cancelled": ":material/cancel:",
    "completed": ":material/check_circle:",
    "failed": ":material/error:",
    "interrupted": ":material/warning:",
}


@st.cache_resource
def _services() -> tuple[Database, Engine]:
    db = handai_db.get_db()
    db.mark_interrupted_runs()
    return db, get_engine(db)


def db() -> Database:
    return _services()[0]


def engine() -> Engine:
    return _services()[1]


def provider_name(provider: str) -> str:
    """Display name, also for runs recorded by a provider id this version no longer knows."""
    return PROVIDERS[provider].name if provider in PROVIDERS else provider


def secrets() -> Mapping[str, Any]:
    """st.secrets, or nothing when there is no secrets file (st.secrets raises then)."""
    try:
        return dict(st.secrets)
    except Exception:  # no secrets.toml, or an unreadable one: both mean "no keys from there"
        return {}


def typed_keys() -> dict[str, str]:
    """Keys typed in this browser session, per provider (never stored anywhere else)."""
    return st.session_state.setdefault("handai_keys", {})


def key_for(provider: str):
    return resolve_key(provider, typed=typed_keys(), secrets=secrets(), store=KeyStore())


@st.cache_data(ttl=30, show_spinner=False)
def local_servers() -> dict[str, Any]:
    """LM Studio and Ollama, probed at start-up and every 30 s at most."""
    return local_servers_status()


def test_provider(conn: Connection):
    """The cheapest real call, with the model chosen for this provider in the sidebar."""
    from providers import connection as provider_connection

    return provider_connection.test_connection(conn, saved(f"model.{conn.provider}", None) or None)


def session_id() -> int:
    """This browser session's row in the sessions table, created with its first run."""
    if "handai_session_id" not in st.session_state:
        name = f"Session {datetime.now():%Y-%m-%d %H:%M}"
        st.session_state["handai_session_id"] = db().create_session(name)
    return st.session_state["handai_session_id"]


# -- the provider sidebar ------------------------------------------------------------------------
@dataclass
class Choice:
    """What the sidebar says to use for the next run."""

    provider: str
    model: str
    temperature: float | None
    max_tokens: int | None
    json_mode: bool
    concurrency: int
    max_retries: int

    def settings(self, **fields: Any) -> RunSettings:
        return RunSettings(
            provider=self.provider,
            model=self.model,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            json_mode=self.json_mode,
            concurrency=self.concurrency,
            max_retries=self.max_retries,
            **fields,
        )


def saved(name: str, default: Any) -> Any:
    return db().get_setting(f"ui.{name}", default)


def remember(name: str, value: Any) -> None:
    if saved(name, None) != value:
        db().set_setting(f"ui.{name}", value)


def connection(provider: str) -> Connection:
    """The connection for a provider from the sidebar's/Settings' fields and the key sources."""
    base_url = saved(f"base_url.{provider}", None)
    if provider == "azure":
        base_url = base_url or resolve_endpoint("azure", secrets=secrets())
    return Connection(
        provider,
        api_key=key_for(provider).key,
        base_url=base_url or None,
        api_version=saved("azure.api_version", None) if provider == "azure" else None,
        deployment=saved("azure.deployment", None) if provider == "azure" else None,
    )


@st.cache_data(ttl=600, show_spinner=False, max_entries=50)
def _models(conn: Connection, refresh_token: int) -> tuple[list[str], str | None]:
    """Model ids for a connection; cached in memory (the key is part of the hashed cache key only)."""
    result = list_models(conn, refresh=refresh_token > 0)
    return [m.id for m in result.models], result.message


def model_options(provider: str) -> tuple[list[str], str | None]:
    return _models(connection(provider), st.session_state.get("handai_models_refresh", 0))


def render_sidebar() -> Choice:
    """The shared sidebar: provider, model, key, parameters. Choices persist (never the key)."""
    sb = st.sidebar
    ids = list(PROVIDERS)
    provider = sb.selectbox(
        "Provider",
        ids,
        index=ids.index(saved("provider", "openai")) if saved("provider", "openai") in ids else 0,
        format_func=lambda p: PROVIDERS[p].name,
        key="handai_provider",
    )
    config = PROVIDERS[provider]
    if config.base_url_editable:
        base_url_box(provider, sb, "handai")
    models, message = model_options(provider)
    saved_model = saved(f"model.{provider}", None) or config.default_model or (models[0] if models else "")
    options = list(dict.fromkeys([*models, *([saved_model] if saved_model else [])]))
    col1, col2 = sb.columns([5, 1], vertical_alignment="bottom")
    picked = col1.selectbox(
        "Model",
        options,
        index=options.index(saved_model) if saved_model in options else 0,
        key=f"handai_model_pick_{provider}",
        accept_new_options=True,
        help="Pick from the list or type any model name the provider accepts.",
    )
    if col2.button("", icon=":material/refresh:", key="handai_models_refresh_btn", help="Refresh the model list"):
        st.session_state["handai_models_refresh"] = st.session_state.get("handai_models_refresh", 0) + 1
        st.rerun()
    if message:
        sb.caption(message)
    model = (picked or "").strip()
    remember(f"model.{provider}", model or None)
    if provider == "azure":
        sb.caption("Model = your deployment name.")
    key_box(provider, sb, "handai")
    with sb.expander("Parameters", icon=":material/tune:"):
        temperature = _optional_number(
            "Temperature",
            "temperature",
            0.0,
            2.0,
            0.7,
            step=0.1,
        )
        max_tokens = _optional_number("Max tokens", "max_tokens", 1, 200_000, 1024, step=64)
        json_mode = st.toggle(
            "JSON mode",
            value=bool(saved("json_mode", False)),
            key="handai_json_mode",
            help="Ask for a JSON object per row; its fields become columns.",
        )
        concurrency = st.slider(
            "Concurrency",
            1,
            128,
            int(saved("concurrency", 16)),
            key="handai_concurrency",
            help="Rows in flight at once. Handai lowers it by itself when the provider rate-limits.",
        )
        max_retries = st.number_input("Retries per row", 0, 10, int(saved("max_retries", 3)), key="handai_max_retries")
    for name, value in (
        ("provider", provider),
        ("json_mode", json_mode),
        ("concurrency", concurrency),
        ("max_retries", int(max_retries)),
    ):
        remember(name, value)
    for pid, listed in local_servers().items():
        if listed.live and pid != provider:
            sb.caption(f":material/dns: {PROVIDERS[pid].name} is running with {len(listed.models)} models.")
    running_badge(sb)
    return Choice(provider, model, temperature, max_tokens, json_mode, int(concurrency), int(max_retries))


def frame() -> Choice:
    """Page config and the shared sidebar, called at the top of every page."""
    _leave_pages_directory_mode()
    st.set_page_config(page_title="Handai", page_icon=":material/table_chart:", layout="wide")
    return render_sidebar()


def _leave_pages_directory_mode() -> None:
    """Streamlit runs a server process's first request in its old pages-directory mode when the
    app has a `pages/` folder: a deep link (a bookmark, a tab reconnecting after a restart) then
    runs the page without handai_app.py, and every session of that process shows the old page
    menu until someone opens `/`. Switch the process to st.navigation mode and rerun, so the
    entry script always runs."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a Streamlit without the old mode
        return
    if getattr(PagesManager, "uses_pages_directory", None):
        PagesManager.uses_pages_directory = False
        # AppTest re-enables the old mode before every run, and a rerun there would drop the
        # click being tested; the page renders fine in this mode, only the menu differs.
        from streamlit import config  # st.get_option does not see AppTest's hidden flag

        if not config.get_option("global.appTest"):
            st.rerun()


def keep(*keys: str) -> None:
    """Widget values that survive leaving the page (Streamlit drops a widget's state with its
    page): restore them from a shadow copy now, and record them again after every change."""
    for key in keys:
        shadow = f"_kept_{key}"
        if key not in st.session_state and shadow in st.session_state:
            st.session_state[key] = st.session_state[shadow]


def kept(*keys: str) -> None:
    """Record the current values of widgets listed in `keep` (call at the end of the page)."""
    for key in keys:
        if key in st.session_state:
            st.session_state[f"_kept_{key}"] = st.session_state[key]


def _optional_number(label: str, name: str, lo: float, hi: float, default: float, step: float) -> Any:
    current = saved(name, None)
    custom = st.checkbox(
        f"Set {label.lower()}",
        value=current is not None,
        key=f"handai_set_{name}",
        help="Off: the provider's default is used.",
    )
    if not custom:
        remember(name, None)
        st.caption(f"{label}: provider default")
        return None
    cast = float if isinstance(step, float) else int
    value = st.number_input(
        label,
        cast(lo),
        cast(hi),
        cast(current if current is not None else default),
        step=cast(step),
        key=f"handai_{name}",
    )
    remember(name, value)
    return value


def synced_text(
    container: Any, label: str, widget_key: str, current: str, on_set: Callable[[str], None], **kwargs: Any
) -> str:
    """A text input bound to a store outside the widget, so the same value can be edited from the
    sidebar and the Settings page and both always show it."""
    st.session_state[widget_key] = current

    def changed() -> None:
        on_set(st.session_state[widget_key])

    return container.text_input(label, key=widget_key, on_change=changed, **kwargs)


def base_url_box(provider: str, container: Any, prefix: str) -> str:
    config = PROVIDERS[provider]
    current = saved(f"base_url.{provider}", None) or ""
    if provider == "azure":
        label, hint = "Endpoint", "https://your-resource.openai.azure.com"
    else:
        label, hint = "Base URL", config.base_url or "http://localhost:8000/v1"
    return synced_text(
        container,
        label,
        f"{prefix}_base_url_{provider}",
        current,
        lambda v: remember(f"base_url.{provider}", v.strip() or None),
        placeholder=hint,
    )


def _set_typed_key(provider: str, value: str) -> None:
    if value.strip():
        typed_keys()[provider] = value


def key_box(provider: str, container: Any, prefix: str) -> None:
    """Key field with the format check as the user types; the key stays in this session only."""
    config = PROVIDERS[provider]
    if not config.needs_key and provider != "custom":
        container.caption(f"{config.name} runs locally: no key needed.")
        return
    resolved = key_for(provider)
    if resolved.key:
        placeholder = f"{mask_key(resolved.key)} ({resolved.label}); type to replace"
    else:
        placeholder = config.key_prefixes[0] + "…" if config.key_prefixes else "optional"
    # Write-only: a committed key moves to this session's memory and the box empties, so the key
    # is never part of the page (a password box still carries its value in the HTML).
    synced_text(
        container,
        f"{config.name} API key",
        f"{prefix}_key_{provider}",
        "",
        lambda v: _set_typed_key(provider, v),
        type="password",
        placeholder=placeholder,
    )
    if resolved.source == "session" and container.button(
        "Forget the typed key", icon=":material/backspace:", key=f"{prefix}_forget_{provider}", type="tertiary"
    ):
        typed_keys().pop(provider, None)
        st.rerun()
    key = key_for(provider)
    check = check_key_format(provider, key.key)
    if key.key and check.cleaned and key.source == "session":
        container.info(" ".join(check.cleaned), icon=":material/cleaning_services:")
    if check.level == "warning":
        container.warning(check.message, icon=":material/warning:")
    elif check.level == "error" and config.needs_key:
        link = f" Get one at {config.key_url}" if config.key_url else ""
        container.caption(f":material/key_off: {check.message}{link}")
    elif key.key:
        container.caption(f":material/key: {mask_key(key.key)} ({key.label})")


def running_badge(container: Any) -> None:
    runs = db().active_runs()
    if not runs:
        return
    for run in runs[:3]:
        page = "pages/generate.py" if run.kind == "generate" else "pages/transform.py"
        container.page_link(
            page,
            label=f"Run #{run.id} in progress",
            icon=":material/progress_activity:",
            query_params={"run": str(run.id)},
        )


# -- runs on a page ------------------------------------------------------------------------------
def page_run_id(kind: str) -> int | None:
    """The run this page shows: this session's, the one in the URL (survives reloads), or the
    newest one still running (so closing the tab and coming back finds it)."""
    state_key = f"{kind}_run_id"
    if "run" in st.query_params:
        try:
            run = db().get_run(int(st.query_params["run"]))
        except ValueError:
            run = None
        if run is not None and run.kind == kind:
            st.session_state[state_key] = run.id
    if st.session_state.get(state_key):
        return int(st.session_state[state_key])
    active = [r for r in db().active_runs() if r.kind == kind]
    if active:
        st.session_state[state_key] = active[0].id
        return active[0].id
    return None


def page_run_section(kind: str, *, duplicates: bool = False) -> None:
    """The page's run, if any: its progress or outcome, actions, and results."""
    run_id = page_run_id(kind)
    if run_id is not None:
        st.divider()
        run_controls(kind, run_id)
        results_view(kind, run_id, duplicates=duplicates)


def show_run(kind: str, run_id: int) -> None:
    st.session_state[f"{kind}_run_id"] = run_id
    st.query_params["run"] = str(run_id)


def start_run(kind: str, run_id: int, conn: Connection) -> None:
    engine().start(run_id, conn)
    show_run(kind, run_id)


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def progress_view(run_id: int) -> Progress:
    """Bar, counters and errors for a run; call inside a fragment that reruns while it runs."""
    p = engine().progress(run_id)
    label = f"{p.done:,} of {p.total:,} rows"
    st.progress(p.fraction, text=label)
    c = st.columns(6)
    c[0].metric("Succeeded", f"{p.succeeded:,}")
    c[1].metric("Failed", f"{p.failed:,}")
    c[2].metric("Retrying", f"{p.retrying:,}")
    c[3].metric("Rows/s", f"{p.rows_per_s:.1f}")
    c[4].metric("ETA", "done" if p.status == "completed" else format_seconds(p.eta_s) if p.live else "–")
    c[5].metric("Concurrency", f"{p.concurrency}/{p.max_concurrency}" if p.live else str(p.max_concurrency))
    cost = "unknown (no price for this model)" if p.cost_usd is None else f"${p.cost_usd:.4f}"
    st.caption(
        f"Tokens: {p.tokens_in:,} in, {p.tokens_out:,} out · cost {cost} · "
        f"calls made {p.calls:,}, saved by the cache {p.cache_hits:,} · elapsed {format_seconds(p.elapsed_s)}"
        + (f" · {p.rate_limited} rate-limit pauses" if p.rate_limited else "")
    )
    errors_by_kind(p.errors_by_kind)
    if p.stop_reason and p.finished:
        (st.error if p.status == "failed" else st.info)(p.stop_reason, icon=STATUS_ICONS.get(p.status))
    return p


def errors_by_kind(errors: Mapping[str, int]) -> None:
    for kind, count in sorted(errors.items(), key=lambda kv: -kv[1]):
        try:
            info = KINDS[ErrorKind(kind)]
        except ValueError:
            info = KINDS[ErrorKind.UNKNOWN]
        st.warning(f"**{count:,} × {info.title}.** {info.action}", icon=":material/error:")


def run_controls(kind: str, run_id: int) -> None:
    """Live progress while the run runs (a fragment that polls the ledger), then its actions."""
    run = db().get_run(run_id)
    if run is None:
        st.session_state.pop(f"{kind}_run_id", None)
        return
    st.subheader(f"Run #{run.id}" + (f" · {run.name}" if run.name else ""))
    st.caption(f"{STATUS_ICONS.get(run.status, '')} {run.status} · {provider_name(run.provider)} / {run.model}")
    if run.status in ACTIVE:
        _live_progress(kind, run_id)
        return
    progress_view(run_id)
    counts = db().run_counts(run_id)
    budget = run.params.get("budget_usd")
    if run.status == "paused" and budget is not None and counts.pending:
        new_cap = st.number_input(
            "Budget cap (USD)",
            min_value=0.0,
            value=float(budget) * 2,
            step=1.0,
            key=f"{kind}_budget_{run_id}",
            help="Raise the cap, then resume.",
        )
        if new_cap != budget:
            engine().update_settings(run_id, budget_usd=new_cap)
    cols = st.columns(3)
    if (
        counts.pending
        and run.status in RESUMABLE
        and cols[0].button("Resume", icon=":material/play_arrow:", key=f"{kind}_resume_{run_id}", type="primary")
    ):
        resume_run(kind, run, retry_failed=False)
    if counts.failed and cols[1].button(
        f"Retry {counts.failed:,} failed rows", icon=":material/replay:", key=f"{kind}_retry_{run_id}"
    ):
        resume_run(kind, run, retry_failed=True)


def resume_run(kind: str, run: Run, *, retry_failed: bool) -> None:
    conn = Connection(
        run.provider,
        api_key=key_for(run.provider).key,
        base_url=run.connection.get("base_url"),
        api_version=run.connection.get("api_version"),
        deployment=run.connection.get("deployment"),
    )
    try:
        if retry_failed:
            engine().retry_failed(run.id, conn)
        else:
            engine().resume(run.id, conn)
    except (RuntimeError, ValueError) as exc:
        st.error(str(exc))
        return
    show_run(kind, run.id)
    st.rerun()


def _live_progress(kind: str, run_id: int) -> None:
    @st.fragment(run_every=1.0)
    def live() -> None:
        p = progress_view(run_id)
        cols = st.columns(4)
        if cols[0].button("Pause", icon=":material/pause:", key=f"{kind}_pause_{run_id}"):
            engine().pause(run_id)
        if cols[1].button("Stop", icon=":material/stop:", key=f"{kind}_stop_{run_id}"):
            engine().cancel(run_id)
        if p.finished or not (engine().is_running(run_id) or db().get_run(run_id).status in ACTIVE):
            st.rerun(scope="app")

    live()


# -- results -------------------------------------------------------------------------------------
def results_view(kind: str, run_id: int, *, duplicates: bool = False) -> None:
    """Results of a run: filter, table, one-row inspector and downloads. Rebuilt from the ledger
    on every rerun, so results never vanish."""
    run = db().get_run(run_id)
    if run is None:
        return
    if run.status in ACTIVE:
        st.caption(":material/hourglass_top: The results table appears when the run ends or is paused.")
        return
    frame = db().results_frame(run_id)
    if duplicates and not frame.empty:
        from handai_prompts import flag_duplicates

        outputs = [c for c in frame.columns if c not in ("row", "ai_status", "ai_error", *run.columns)]
        frame["ai_duplicate"] = flag_duplicates(frame[outputs].to_dict(orient="records"))
    statuses = ["all", "succeeded", "failed", "pending"]
    status = st.segmented_control("Show", statuses, default="all", key=f"{kind}_filter_{run_id}")
    shown = frame if status in (None, "all") else frame[frame["ai_status"] == status]
    kinds = db().run_counts(run_id).errors_by_kind
    if kinds and status in (None, "all", "failed"):
        chosen = st.multiselect(
            "Error kinds", sorted(kinds), key=f"{kind}_kinds_{run_id}", format_func=lambda k: f"{k} ({kinds[k]:,})"
        )
        if chosen:
            rows = [r.row_index for r in db().results(run_id, statuses=["failed"], error_kinds=chosen)]
            shown = frame.iloc[rows]
    counts = frame["ai_status"].value_counts()
    st.caption(
        f"Showing {len(shown):,} of {len(frame):,} rows · {counts.get('succeeded', 0):,} succeeded · "
        f"{counts.get('failed', 0):,} failed · {counts.get('pending', 0):,} pending"
    )
    st.dataframe(shown.head(5000).fillna(""), width="stretch", hide_index=False)
    if len(shown) > 5000:
        st.caption("Showing the first 5,000 rows; the downloads hold every row.")
    downloads(frame, f"handai_run_{run_id}", key=f"{kind}_{run_id}")
    inspector(run, key=f"{kind}_{run_id}")


def downloads(frame: pd.DataFrame, stem: str, key: str) -> None:
    cols = st.columns(len(EXPORT_FORMATS))
    for col, (fmt, mime) in zip(cols, EXPORT_FORMATS.items(), strict=True):
        col.download_button(
            fmt.upper(),
            data=lambda fmt=fmt: export_bytes(frame, fmt),
            file_name=f"{stem}.{fmt}",
            mime=mime,
            icon=":material/download:",
            key=f"dl_{key}_{fmt}",
            on_click="ignore",
        )


def inspector(run: Run, key: str) -> None:
    with st.expander("Inspect a row", icon=":material/search:"):
        total = max(run.total_rows, 1)
        index = st.number_input("Row", 1, total, 1, key=f"inspect_{key}") - 1
        result = db().result(run.id, int(index))
        if result is None:
            st.info("No such row.")
            return
        structured = bool(run.output_schema) or bool(run.params.get("json_mode"))
        system = system_message(run.system_prompt, run.output_schema, bool(run.params.get("json_mode")))
        user = result.request or user_message(result.input, template=run.row_template, columns=run.columns)
        st.markdown(
            f"**Status:** {result.status} · attempts {result.attempts} · "
            f"latency {result.latency_ms or 0:.0f} ms · tokens {result.tokens_in} in, {result.tokens_out} out"
            + (" · from the cache" if result.cached else "")
            + (f" · ${result.cost_usd:.6f}" if result.cost_usd is not None else "")
        )
        if result.error_message:
            st.error(f"{result.error_kind}: {result.error_message}")
        st.markdown("**Input**")
        st.json(result.input, expanded=False)
        st.markdown("**Messages sent**")
        st.json(build_messages(system, user), expanded=True)
        st.markdown("**Raw reply**")
        st.code(result.raw or "", language="json" if structured else None, wrap_lines=True)
        if result.parsed:
            st.markdown("**Parsed values**")
            st.json(result.parsed)


def estimate_caption(df_rows: int, prompt_tokens: float, choice: Choice, fields: int, input_hash: str) -> str:
    """One line: tokens, cost and time the run will take, and what the figures are based on."""
    from handai_estimate import estimate_run

    est = estimate_run(
        df_rows,
        prompt_tokens,
        concurrency=choice.concurrency,
        max_tokens=choice.max_tokens,
        fields=fields,
        price=price_for(choice.provider, choice.model, overrides=db().get_setting("prices", {})),
        test_stats=db().latest_test_run_stats(input_hash, choice.provider, choice.model) if input_hash else None,
    )
    cost = (
        "cost unknown (no price for this model; add one in Settings)"
        if est.cost_usd is None
        else (f"about ${est.cost_usd:,.4f}")
    )
    return (
        f"Estimate for {est.rows:,} rows: {est.tokens_in:,} tokens in, {est.tokens_out:,} out, {cost}, "
        f"about {format_seconds(est.seconds)} — {est.basis}."
    )


def schema_editor(key: str, rows: list[dict[str, str]]) -> dict[str, Any] | None:
    """Output fields as an editable table (name, type, description); None when no field is named."""
    start = pd.DataFrame(rows or [{"name": None, "type": None, "description": None}], dtype="str")
    edited = st.data_editor(
        start,
        num_rows="dynamic",
        key=key,
        width="stretch",
        column_config={"type": st.column_config.SelectboxColumn("type", options=list(FIELD_TYPES), default="string")},
    )
    schema = make_schema(edited.fillna("").to_dict(orient="records"))
    return schema if schema["fields"] else None


def run_settings_table(run: Run) -> pd.DataFrame:
    sent = run.params.get("sent", {})
    rows = {
        "Provider": provider_name(run.provider),
        "Model": run.model,
        "Endpoint": run.connection.get("base_url") or "",
        "Temperature": "provider default" if run.params.get("temperature") is None else run.params["temperature"],
        "Max tokens": "provider default" if run.params.get("max_tokens") is None else run.params["max_tokens"],
        "JSON mode": bool(run.params.get("json_mode")),
        "Sent parameters": json.dumps(sent),
        "Cache": "on" if run.params.get("use_cache", True) else "off",
        "Budget cap (USD)": run.params.get("budget_usd") or "none",
        "Cost (USD)": "unknown" if run.cost_usd is None else f"{run.cost_usd:.6f}",
        "Calls made / saved by cache": f"{run.calls} / {run.cache_hits}",
        "Concurrency": run.concurrency,
        "Retries": run.max_retries,
        "Input": run.input_name,
        "Input SHA-256": run.input_hash,
    }
    return pd.DataFrame({"Setting": list(rows), "Value": [str(v) for v in rows.values()]})
