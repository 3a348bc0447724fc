"""Handai's entry point: navigation over the pages. Each page draws the shared frame (page config
and provider sidebar) through `handai_ui.frame()`."""

import streamlit as st

pages = st.navigation(
    {
        "One model": [
            st.Page("pages/transform.py", title="Transform", icon=":material/table_rows:", default=True),
            st.Page("pages/generate.py", title="Generate", icon=":material/auto_awesome:"),
        ],
        "Several models": [
            st.Page("pages/compare.py", title="Compare models", icon=":material/compare_arrows:"),
            st.Page("pages/consensus.py", title="Consensus", icon=":material/how_to_vote:"),
            st.Page("pages/pipeline.py", title="Pipeline", icon=":material/account_tree:"),
        ],
        "Qualitative coding": [
            st.Page("pages/codebooks.py", title="Codebooks", icon=":material/menu_book:"),
            st.Page("pages/coder.py", title="Qualitative coder", icon=":material/label:"),
            st.Page("pages/reliability.py", title="Reliability", icon=":material/query_stats:"),
            st.Page("pages/adjudicate.py", title="Adjudicate", icon=":material/gavel:"),
        ],
        "Runs and settings": [
            st.Page("pages/history.py", title="History", icon=":material/history:"),
            st.Page("pages/settings.py", title="Settings", icon=":material/settings:"),
        ],
    }
)
pages.run()
