"""Settings: one card per provider with its key, endpoint, status and a real connection test."""

import pandas as pd
import streamlit as st

import handai_ui as ui
from handai_errors import ErrorKind, mask_key
from providers import LIST_PRICES, PROVIDERS, KeyStore, KeyStoreError, ProbeResult, check_key_format

ui.frame()
st.title("Settings", anchor=False)
st.caption(
    "Keys are looked up in this order: typed here (this browser session only) → .streamlit/secrets.toml → "
    "environment variable → remembered on this computer (encrypted). They never reach the run database, "
    "logs or exports."
)
st.caption(
    f"Run database: {ui.md(ui.db().display_url)} · your settings are kept as user **{ui.md(ui.db().user)}** "
    "(HANDAI_USER; on a shared PostgreSQL ledger everyone sees every run, and each person keeps their own "
    "provider choices)."
)


def tested_status(tested: ProbeResult) -> tuple[str, str]:
    """The card's label after "Test connection": a rejected key is named as such."""
    if tested.ok:
        return "tested ok", ":material/check_circle:"
    error = tested.error
    if error is not None and error.kind == ErrorKind.INVALID_KEY:
        return f"key rejected ({error.status or 401})", ":material/key_off:"
    if error is not None and error.kind == ErrorKind.NETWORK:
        return "not reachable", ":material/error:"
    return "test failed", ":material/error:"


local = ui.local_servers()
store = KeyStore()

for pid, config in PROVIDERS.items():
    conn = ui.connection(pid)
    resolved = ui.key_for(pid)
    check = check_key_format(pid, resolved.key)
    # The key box says why a key looks wrong (and where to get one when it is unusable).
    key_looks_wrong = bool(resolved.key) and (check.level == "warning" or (check.level == "error" and config.needs_key))
    key_box_links = check.level == "error" and config.needs_key
    tested = st.session_state.get(f"set_tested_{pid}")
    if tested is not None:
        status = tested_status(tested)
    elif config.local:
        status = (
            ("server running", ":material/dns:")
            if local.get(pid) and local[pid].live
            else ("server not running", ":material/cloud_off:")
        )
    elif (pid == "custom" or pid == "azure") and not conn.effective_base_url():
        status = ("no endpoint yet", ":material/link_off:")
    elif config.needs_key and not resolved.key:
        status = ("no key", ":material/key_off:")
    elif key_looks_wrong:
        status = ("key looks wrong", ":material/warning:")
    else:
        status = ("ready", ":material/check:")
    # Streamlit draws an expander anew when its label changes: keep the card open whenever it has
    # something to say, or it closes on the very message it should show.
    with st.expander(
        f"{config.name} — {status[0]}",
        icon=status[1],
        expanded=pid == st.session_state.get("handai_provider")
        or tested is not None
        or key_looks_wrong
        or bool(st.session_state.get(f"set_open_{pid}")),
    ):
        if config.local:
            listed = local.get(pid)
            if listed is not None and listed.live:
                st.success(
                    f"Found {len(listed.models)} models: {ui.md(', '.join(m.id for m in listed.models[:8]))}",
                    icon=":material/dns:",
                )
            elif listed is not None and listed.message:
                st.info(ui.md(listed.message), icon=":material/cloud_off:")
        if config.base_url_editable:
            ui.base_url_box(pid, st, "set")
        if pid == "azure":
            c = st.columns(2)
            ui.synced_text(
                c[0],
                "api-version",
                "set_az_version",
                conn.effective_api_version() or "",
                lambda v: ui.remember("azure.api_version", v.strip() or None),
            )
            ui.synced_text(
                c[1],
                "Deployment",
                "set_az_deployment",
                conn.deployment or "",
                lambda v: ui.remember("azure.deployment", v.strip() or None),
            )
        ui.key_box(pid, st, "set")
        if config.key_url and resolved.key and not key_box_links:
            st.caption(
                f"Get a key: {config.key_url}"
                + (f" · environment variable `{config.key_env}`" if config.key_env else "")
            )
        c = st.columns(3)
        if config.needs_key or pid == "custom":
            if (
                resolved.key
                and resolved.source == "session"
                and c[1].button(
                    "Remember on this computer",
                    icon=":material/lock:",
                    key=f"set_remember_{pid}",
                )
            ):
                try:
                    store.set(pid, resolved.key)
                except KeyStoreError as exc:
                    st.error(ui.md(str(exc)))
                else:
                    st.toast(ui.md(f"{config.name} key {mask_key(resolved.key)} remembered (encrypted)."))
                    st.rerun()
            remembered = pid in store.names()
            if remembered and c[2].button(
                "Forget remembered key", icon=":material/lock_open:", key=f"set_forget_{pid}"
            ):
                try:
                    store.forget(pid)
                except KeyStoreError as exc:
                    st.error(ui.md(str(exc)))
                else:
                    st.rerun()
            if remembered or (resolved.key and resolved.source == "session"):
                st.caption(f":material/lock: {ui.md(store.describe())}")
        if c[0].button("Test connection", icon=":material/network_check:", key=f"set_test_{pid}"):
            st.session_state[f"set_open_{pid}"] = True
            with st.spinner("Testing…"):
                st.session_state[f"set_tested_{pid}"] = ui.test_provider(ui.connection(pid))
            st.rerun()
        if tested is not None:
            (st.success if tested.ok else st.error)(
                ui.md(tested.message), icon=":material/check_circle:" if tested.ok else ":material/error:"
            )

st.subheader("Prices", anchor=False)
st.caption(
    "USD per million tokens, used for cost estimates, budget caps and the cost of each run. Built-in list "
    "prices cover the curated models and OpenRouter's come from its model list; entries here take precedence "
    "(use `provider/model` to price one provider's model only)."
)
saved_prices = ui.db().get_setting("prices", {}) or {}
table = pd.DataFrame(  # no blank starter row: the editor's "+" adds one, so nothing starts as "None"
    [{"model": m, "prompt": p.get("prompt"), "completion": p.get("completion")} for m, p in saved_prices.items()],
    columns=["model", "prompt", "completion"],
).astype({"model": "string", "prompt": "float64", "completion": "float64"})
edited = st.data_editor(
    table,
    num_rows="dynamic",
    key="set_prices",
    width="stretch",
    column_config={
        "prompt": st.column_config.NumberColumn("input $/1M", min_value=0.0, format="%.4f"),
        "completion": st.column_config.NumberColumn("output $/1M", min_value=0.0, format="%.4f"),
    },
)
prices = {
    str(r["model"]).strip(): {"prompt": float(r["prompt"]), "completion": float(r["completion"])}
    for r in edited.to_dict(orient="records")
    if pd.notna(r.get("model"))
    and str(r["model"]).strip()
    and pd.notna(r.get("prompt"))
    and pd.notna(r.get("completion"))
}
if prices != saved_prices:
    ui.db().set_setting("prices", prices)
    st.toast("Prices saved.")
with st.expander("Built-in list prices", icon=":material/sell:"):
    st.dataframe(
        pd.DataFrame([{"model": m, "input $/1M": a, "output $/1M": b} for m, (a, b) in LIST_PRICES.items()]),
        hide_index=True,
        width="stretch",
    )
