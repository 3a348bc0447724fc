"""Adjudicate: the rows where the coders disagree, the most divided first, each with every coder's
answer and reason; a person settles each (picks an answer or writes another), and the decision,
who made it and when are kept in the ledger as the `adjudicated` coder, a gold column for
Reliability."""

import streamlit as st

import handai_ui as ui
from research.adjudication import ORDERS, disagreements, summary
from research.raters import HUMAN, MODEL

ui.frame()
st.title("Adjudicate", anchor=False)
st.caption(
    "Settle the rows where the coders disagree. Each decision is recorded with your name and the time, and the "
    "settled rows become the `adjudicated` column: a gold standard on the Reliability page."
)

PREFIX = "adj"
table = ui.coded_run_pick(PREFIX)
if table is not None:
    run_id = int(st.session_state[f"{PREFIX}_run"])
    coders = st.multiselect(
        "Coders whose disagreements to settle",
        table.names(MODEL, HUMAN),
        default=table.names(MODEL, HUMAN),
        key=f"{PREFIX}_coders_{run_id}",
    )
    c = st.columns([2, 2, 1], vertical_alignment="bottom")
    order = c[0].selectbox("Order", ORDERS, key=f"{PREFIX}_order")
    author = c[1].text_input("Your name", key=f"{PREFIX}_author", placeholder="recorded with each decision")
    again = c[2].toggle("Show settled rows", key=f"{PREFIX}_settled")
    counts = summary(table, coders)
    m = st.columns(3)
    m[0].metric("Rows where the coders disagree", f"{counts['disagreements']:,} of {counts['rows']:,}")
    m[1].metric("Settled", f"{counts['settled']:,}")
    m[2].metric("Still open", f"{counts['open']:,}")
    queue = disagreements(table, coders=coders, order=order, include_settled=again)
    if len(coders) < 2:
        st.info("Choose at least two coders.", icon=":material/info:")
    elif not queue:
        st.success("Nothing to settle: every row the coders answered is agreed or settled.", icon=":material/task_alt:")
    else:
        ui.adjudication_card(run_id, table, queue, author=author, prefix=PREFIX)
    st.page_link(
        "pages/reliability.py", label="Measure agreement and validate on Reliability", icon=":material/query_stats:"
    )
