"""Runs sent as provider batches, found again after the app restarts.

At start-up the app re-attaches to every batch run left open, with the keys it has without a
browser session (secrets.toml, the environment, the remembered key store; never a key typed in
some session). A run whose key was only typed in a browser session waits: it is re-attached when a
session that has the key opens it, and its page says it is waiting until then.
"""

from __future__ import annotations

import streamlit as st

from handai_db import Database, Run, RunStatus
from handai_engine import Engine
from handai_engine.batch import is_batch
from handai_errors import RunStartError
from providers import PROVIDERS, Connection, KeyStore, MissingKeyError, resolve_key
from providers.capabilities import supports_batch

from .connections import key_for, run_connection, saved_connection, secrets
from .services import db, engine, waiting_runs
from .sidebar import provider_name
from .text import md


def unattended_connection(database: Database, provider: str) -> Connection | None:
    """A provider's saved connection with a key found without a browser session, or None when
    there is no such key."""
    key = resolve_key(provider, secrets=secrets(), store=KeyStore()).key
    if not key and PROVIDERS[provider].needs_key:
        return None
    return saved_connection(database, provider, key)


def reattach_at_start(database: Database, eng: Engine) -> set[int]:
    """Re-attach to the open batches no live process polls; returns the batch runs left waiting
    (for a key only a browser session has, or for the user)."""
    if not database.runs_with_open_batches():
        return set()
    conns = {p: c for p in PROVIDERS if supports_batch(p) and (c := unattended_connection(database, p)) is not None}
    eng.reattach_batches(conns)
    return {r.id for r in database.runs_with_open_batches() if is_batch(r) and not RunStatus(r.status).active}


def run_providers(run: Run) -> list[str]:
    return list(dict.fromkeys([a["provider"] for a in run.plan["arms"]] if run.plan else [run.provider]))


def reattach_waiting(run_id: int) -> None:
    """On a run's page: re-attach a batch run left waiting at start-up once this session has its
    key; until then, say plainly that it waits and for which key."""
    waiting = waiting_runs()
    if run_id not in waiting:
        return
    run = db().get_run(run_id)
    if run is None or RunStatus(run.status).active or not any(s.open for s in engine().batches(run_id)):
        waiting.discard(run_id)  # attached elsewhere, or nothing left at the provider
        return
    try:
        engine().resume(run_id, run_connection(run))
    except MissingKeyError:
        missing = [provider_name(p) for p in run_providers(run) if not key_for(p).key]
        names = " and ".join(missing) or "its provider"
        st.warning(
            f"Run #{run_id} is waiting for a key: its batches are at {md(names)}, and the app restarted "
            f"without a {md(names)} key it can use on its own. Enter the key in the sidebar (or Settings) "
            "and the run is re-attached to collect its results.",
            icon=":material/key_off:",
        )
        return
    except RunStartError as exc:
        waiting.discard(run_id)
        st.error(md(exc), icon=":material/error:")
        return
    waiting.discard(run_id)
    st.toast(f"Run #{run_id} re-attached to its batches.", icon=":material/cloud_sync:")
