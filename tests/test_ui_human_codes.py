"""Coding by hand: an uncoded row starts as an empty cell (Streamlit's data_editor draws None as a
grey "None"), and saving leaves it uncoded rather than coded as ""."""

from __future__ import annotations

import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.helpers import no_exceptions


def hand_coding_page(run_id: int) -> None:
    from types import SimpleNamespace

    import pandas as pd

    from handai_ui.human_codes import human_coders
    from research.raters import HUMAN, Rater, RaterTable

    table = RaterTable(
        frame=pd.DataFrame({"Ann": ["price", None, None]}),
        raters=[Rater("Ann", HUMAN, "typed")],
        inputs=pd.DataFrame({"text": ["too dear", "broke", "slow"]}),
    )
    human_coders(SimpleNamespace(id=run_id), table, "t")


def test_uncoded_rows_start_empty_and_stay_uncoded_when_saved(ledger):
    st.cache_resource.clear()  # the app's database getter: this test's ledger, not an earlier test's
    rows = [{"text": t} for t in ("too dear", "broke", "slow")]
    run_id = ledger.create_run(rows, kind="coder", provider="custom", model="m", columns=["text"])
    at = AppTest.from_function(hand_coding_page, args=(run_id,), default_timeout=30).run()
    at.text_input(key="t_hand_name").set_value("Ann").run()
    no_exceptions(at)
    editor = at.get("data_editor")[0]
    assert editor.value["Ann"].tolist() == ["price", "", ""]
    assert editor.proto.placeholder == ""  # and a missing cell, if any, shows nothing
    at.text_input(key="t_hand_name").set_value("Bo").run()
    assert at.get("data_editor")[0].value["Bo"].tolist() == ["", "", ""]  # a new coder: nothing coded yet

    at.text_input(key="t_hand_name").set_value("Ann").run()
    next(b for b in at.button if b.label.startswith("Save Ann's codes")).click().run()
    no_exceptions(at)
    saved = {r.row_index: r.value for r in ledger.ratings(run_id) if r.rater == "Ann"}
    assert saved == {0: "price", 1: None, 2: None}
