"""History's "Re-run from a methods bundle": a bundle uploaded, its recorded settings shown, an
optional input file, what will differ from the record before anything is sent, then the repeat
created and started with the sidebar's keys (never the bundle's), and, once it has run, how many
answers differ from the bundle's, with a link to the new run."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace

import pandas as pd
import streamlit as st

from handai_db import ACTIVE_STATUSES
from handai_engine.runner import Connections
from handai_io import SUPPORTED_EXTENSIONS, ReadOptions, content_hash
from providers import Connection
from research.rerun import (
    Bundle,
    CannotRepeat,
    NotABundle,
    Repeat,
    arms_table,
    compare_answers,
    create_repeat,
    expected_differences,
    input_file_change,
    plan_repeat,
    read_bundle,
    recorded_differences,
    transform_connection,
)

from .connections import connection, connections
from .controls import start_request, submit_run
from .services import db, engine, session_id
from .sidebar import run_page
from .text import md
from .upload import Upload, forget_upload, read_upload, sheet_picker

KIND = "history"  # the page whose run section shows the repeat (its heading, progress and answers)
CACHE_HELP = (
    "Off: every row is sent again, so the repeat shows what the model answers today. On: replies "
    "already paid for (same model, messages, settings and sample) are reused, which repeats nothing."
)


@dataclass(frozen=True)
class Repeating:
    """A repeat started from this section: its run, the bundle and what it repeats, and (once it
    has run) what differs from the record, read at the run's counts `compared_at`."""

    run_id: int
    bundle: Bundle
    repeat: Repeat
    changed: tuple[str, ...] = ()
    answers: tuple[int, int] | None = None
    compared_at: tuple[str, int, int] | None = None


def bundle_rerun(prefix: str, open_run: Callable[[int], None]) -> None:
    """The expander; `open_run(run_id)` makes the page show a run (called when a repeat starts and
    by the link to it; it may be a widget callback)."""
    with st.expander("Re-run from a methods bundle", icon=":material/replay:"):
        st.caption(
            "Repeat a run from the ZIP that Download → Methods bundle (or `handai_cli.py runs export --bundle`) "
            "made: the recorded instruction, models, endpoints and parameters, on the bundle's own rows or "
            "on a file you give. Keys come from the sidebar and Settings, never from the bundle."
        )
        bundle = _bundle(prefix)
        if bundle is not None:
            _repeat_form(prefix, bundle, open_run)
        _outcome(prefix, open_run)


def _bundle(prefix: str) -> Bundle | None:
    """The uploaded bundle, read once per content; anything else gets one message."""
    uploaded = st.file_uploader("Methods bundle (ZIP)", type=["zip"], key=f"{prefix}_bundle_file")
    if uploaded is None:
        return None
    data = uploaded.getvalue()
    digest, kept_key = content_hash(data), f"{prefix}_bundle_read"
    kept = st.session_state.get(kept_key)
    if kept is not None and kept[0] == digest:
        return kept[1]
    try:
        bundle = read_bundle(data, uploaded.name)
    except NotABundle as exc:
        st.session_state.pop(kept_key, None)
        st.error(md(exc), icon=":material/error:")
        return None
    st.session_state[kept_key] = (digest, bundle)
    return bundle


def _recorded(bundle: Bundle) -> None:
    """What the bundle says was run: which run, on what, when, and each model with its endpoint."""
    prov = bundle.provenance
    run, data = prov["run"], prov["input"]
    when = (run.get("started") or run.get("created") or "")[:10] or "an unrecorded date"
    st.markdown(
        f"**Run #{md(run['id'])}** ({md(run['kind'])}) on {when}: {bundle.rows:,} rows of "
        f"**{md(data.get('name') or 'an unnamed input')}** (columns {md(', '.join(bundle.input_columns))}), "
        f"Handai {md(prov.get('software', {}).get('handai', 'unknown'))}."
    )
    st.dataframe(pd.DataFrame(arms_table(bundle)), hide_index=True, width="stretch")


def _input(prefix: str) -> Upload | None | bool:
    """The input table to repeat the run on: an Upload, None for the bundle's own rows, or False
    when the given file cannot be read (the reader said why)."""
    kept = f"{prefix}_bundle_input_read"
    uploaded = st.file_uploader(
        "Input file (optional: by default the bundle's own rows are sent again)",
        type=list(SUPPORTED_EXTENSIONS),
        key=f"{prefix}_bundle_input",
        on_change=forget_upload,
        args=(kept,),
    )
    if uploaded is None:
        return None
    options = ReadOptions(sheet=st.session_state.get(f"{prefix}_bundle_sheet"))
    upload = read_upload(kept, uploaded.getvalue(), uploaded.name, options)
    if upload is None:
        return False
    sheet_picker(f"{prefix}_bundle", st.empty(), upload)
    return upload


def _connections(repeat: Repeat) -> Connections:
    """The sidebar's connections (their keys); a transform goes to the endpoint it recorded."""
    if repeat.plan is not None:
        return connections(repeat.providers)
    return transform_connection(repeat, connection(repeat.settings.provider))


def _expected(prefix: str, bundle: Bundle, repeat: Repeat, conns: Connections) -> list[str]:
    """`expected_differences`, kept until the bundle, the rows or the endpoints change (it hashes
    every row's text, which a large table should not pay on every rerun; pandas' hash is cheaper)."""
    reached = [c.safe_dict() for c in ([conns] if isinstance(conns, Connection) else conns.values())]
    try:
        rows = int(pd.util.hash_pandas_object(repeat.rows, index=False).sum())
    except TypeError:  # cells pandas cannot hash (lists from a JSON file): not kept
        return expected_differences(bundle, repeat, conns)
    key = (bundle.name, bundle.run_id, repeat.input_hash, rows, json.dumps(reached, sort_keys=True))
    kept = st.session_state.get(f"{prefix}_bundle_expected")
    if kept is None or kept[0] != key:
        kept = (key, expected_differences(bundle, repeat, conns))
        st.session_state[f"{prefix}_bundle_expected"] = kept
    return kept[1]


def _repeat_form(prefix: str, bundle: Bundle, open_run: Callable[[int], None]) -> None:
    _recorded(bundle)
    given = _input(prefix)
    if given is False:
        return
    use_cache = st.toggle("Reuse cached replies", value=False, key=f"{prefix}_bundle_cache", help=CACHE_HELP)
    try:
        if isinstance(given, Upload):
            repeat = plan_repeat(bundle, given.table.df, name=given.name, digest=given.digest, use_cache=use_cache)
        else:
            repeat = plan_repeat(bundle, use_cache=use_cache)
    except CannotRepeat as exc:
        st.error(md(exc), icon=":material/error:")
        return
    conns = _connections(repeat)
    file_change = input_file_change(bundle, repeat.input_hash) if isinstance(given, Upload) else None
    changes = [line for line in (file_change, *_expected(prefix, bundle, repeat, conns)) if line]
    if changes:
        st.markdown("**What will differ from the record**")
        st.markdown("\n".join(f"- {md(line)}" for line in changes))
    else:
        st.caption(":material/check: Same recorded settings and input rows.")
    cache = "reusing cached replies" if use_cache else "every row sent again"
    clicked = st.button(
        f"Re-run {len(repeat.rows):,} rows from {md(repeat.input_name)} ({cache})",
        icon=":material/replay:",
        type="primary",
        key=f"{prefix}_bundle_run",
    )
    if not start_request(KIND, "repeat" if clicked else None):
        return
    made: list[Repeating] = []

    def create() -> int:
        run_id = create_repeat(engine(), repeat, conns, session_id=session_id())
        made.append(Repeating(run_id, bundle, repeat))
        return run_id

    if submit_run(KIND, create, conns):  # else it said why, and left no run behind
        st.session_state[f"{prefix}_bundle_repeat"] = made[0]
        open_run(made[0].run_id)
        st.rerun()


def _outcome(prefix: str, open_run: Callable[[int], None]) -> None:
    """The repeat started here: waiting while it runs, then how many answers differ."""
    key = f"{prefix}_bundle_repeat"
    repeating: Repeating | None = st.session_state.get(key)
    if repeating is None:
        return
    run = db().get_run(repeating.run_id)
    if run is None:  # deleted since
        st.session_state.pop(key, None)
        return
    st.divider()
    if run.status in ACTIVE_STATUSES:
        st.caption(
            f":material/hourglass_top: Run #{run.id} is repeating run {md(repeating.bundle.run_id)}; "
            "how many answers differ from the bundle's is shown here when it ends."
        )
        _wait_for(run.id)
        return
    at = (str(run.status), run.succeeded, run.failed)
    if repeating.answers is None or repeating.compared_at != at:
        bundle = repeating.bundle
        repeating = replace(
            repeating,
            changed=tuple(recorded_differences(db(), bundle, run.id, repeating.repeat)),
            answers=compare_answers(db(), bundle, run.id),
            compared_at=at,
        )
        st.session_state[key] = repeating
    differ, compared = repeating.answers
    text = (
        f"Run #{run.id} ({run.status}) repeated run {md(repeating.bundle.run_id)} of {md(repeating.bundle.name)}: "
        f"{differ} of {compared} rows have answers that differ from the bundle's."
    )
    (st.success if differ == 0 else st.warning)(text, icon=":material/compare_arrows:")
    if repeating.changed:
        st.markdown("**What differed from the record**")
        st.markdown("\n".join(f"- {md(line)}" for line in repeating.changed))
    c = st.columns(2)
    c[0].button(
        f"Open run #{run.id} here",
        icon=":material/history:",
        key=f"{prefix}_bundle_open",
        on_click=open_run,
        args=(run.id,),
    )
    with c[1]:
        st.page_link(
            run_page(run.kind),
            label=f"Run #{run.id} on its page",
            icon=":material/open_in_new:",
            query_params={"run": str(run.id)},
        )


def _wait_for(run_id: int) -> None:
    @st.fragment(run_every=1.0)
    def waiting() -> None:
        run = db().get_run(run_id)
        if run is None or run.status not in ACTIVE_STATUSES:
            st.rerun(scope="app")

    waiting()
