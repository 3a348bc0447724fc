"""Results first: the answers pinned at the left and numbered from 1, the sent columns and the
answers one click away, input beside answer in the inspector, the newest answers while a run
runs, "completed · N failed", a per-run view of what came back, and asking before a second run."""

from __future__ import annotations

import json
import time
import warnings

import pandas as pd
from streamlit.testing.v1 import AppTest

from handai_db import ACTIVE_STATUSES, Database, RunStatus
from handai_ui.announce import finished_title
from handai_ui.frame import PAGE_ICON
from handai_ui.results import numbered, rows_text
from handai_ui.run_charts import value_counts
from handai_ui.shown_columns import blank_text
from tests.conftest import ROOT
from tests.helpers import no_exceptions, widget

WIDE = b"id,a,b,c,text\n1,x,y,z,hello\n2,x,y,z,[[error:400]] no\n3,x,y,z,world\n"


def run_id_of(at: AppTest) -> int:
    value = at.query_params["run"]
    return int(value[0] if isinstance(value, list) else value)


def wait(db: Database, run_id: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while db.get_run(run_id).status in ACTIVE_STATUSES:
        assert time.monotonic() < deadline, f"run {run_id} still active"
        time.sleep(0.05)


def start_transform(at: AppTest, llm, data: bytes, columns: list[str] | None = None) -> None:
    widget(at, "selectbox", "handai_provider").set_value("custom").run()
    widget(at, "text_input", "handai_base_url_custom").set_value(llm.url).run()
    widget(at, "selectbox", "handai_model_pick_custom").set_value("fake-small").run()
    at.file_uploader[0].set_value(("wide.csv", data, "text/csv")).run()
    widget(at, "text_area", "tf_prompt").set_value("Echo.").run()
    if columns is not None:
        widget(at, "multiselect", "tf_columns").set_value(columns).run()
    widget(at, "button", "tf_full").click().run()
    no_exceptions(at)


def results_element(at: AppTest):
    return next(d for d in at.dataframe if "ai_status" in d.value.columns)


def drawn(element) -> tuple[list[str], set[str]]:
    """A drawn table's column order and its pinned columns."""
    config = json.loads(element.proto.columns) if element.proto.columns else {}
    return list(element.proto.column_order), {c for c, v in config.items() if isinstance(v, dict) and v.get("pinned")}


# -- pure helpers ---------------------------------------------------------------------------------
def test_rows_are_numbered_from_one_everywhere():
    frame = numbered(pd.DataFrame({"x": ["a", "b"]}))
    assert frame.index.tolist() == [1, 2] and frame.index.name == "row"
    assert rows_text([0, 4]) == "rows 1, 5"
    assert rows_text([2]) == "row 3"


def test_value_counts_skip_free_text_and_keep_categories():
    labels = pd.Series(["pos", "neg", "pos", "neu", "pos", "neg", "pos", "neg", "pos", "neu"])
    assert value_counts(labels).to_dict() == {"pos": 5, "neg": 3, "neu": 2}
    prose = pd.Series([f"A long and different reply number {i} about the row at hand, in words." for i in range(20)])
    assert value_counts(prose) is None
    unique = pd.Series([f"id{i}" for i in range(20)])
    assert value_counts(unique) is None


def test_blanks_fill_only_text_and_leave_numbers_and_ticks_alone():
    frame = pd.DataFrame(
        {
            "score": [0.5, None],
            "label": ["pos", None],
            "gpt.evidence_found": [True, None],
            "sure": [False, None],
            "agreed": ["yes", None],  # an answer field of that name, holding text
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pandas 3 warns when "" fills a float column
        shown = blank_text(frame)
    assert shown["label"].tolist() == ["pos", ""]
    assert shown["score"].dtype == float and pd.isna(shown["score"][1])
    assert shown["gpt.evidence_found"].tolist() == [True, None] and shown["sure"].tolist() == [False, None]
    assert shown["agreed"].tolist() == ["yes", ""]
    assert frame["label"].isna().tolist() == [False, True]  # a copy: the caller's frame is not changed


def test_a_finished_run_title_says_how_it_ended():
    class FakeRun:
        id, status = 12, RunStatus.COMPLETED

    assert finished_title(FakeRun, 0) == "✓ Run #12 completed · Handai"
    assert finished_title(FakeRun, 93) == "✓ Run #12 completed · 93 failed · Handai"


def test_the_page_icon_is_a_local_image():
    assert PAGE_ICON.is_file() and PAGE_ICON.suffix == ".png"
    assert ":material/" not in (ROOT / "handai_ui" / "frame.py").read_text().split("page_icon=")[1].split(")")[0]


# -- the results table ----------------------------------------------------------------------------
def test_answers_come_first_pinned_and_numbered_from_one(app, llm, ledger):
    start_transform(app, llm, WIDE, columns=["id", "text"])
    run_id = run_id_of(app)
    wait(ledger, run_id)
    app.run()
    no_exceptions(app)
    table = results_element(app)
    assert table.value.index.tolist() == [1, 2, 3]
    order, pinned = drawn(table)
    assert order == ["ai_output", "ai_status", "id", "a", "b", "c", "text", "ai_error"]
    assert pinned == {"ai_output", "ai_status"}
    widget(app, "toggle", f"transform_only_sent_{run_id}").set_value(True).run()
    no_exceptions(app)
    order, pinned = drawn(results_element(app))
    assert order == ["ai_output", "ai_status", "id", "text", "ai_error"] and pinned == {"ai_output", "ai_status"}
    # "completed · 1 failed" in the run's status line
    assert any("completed · 1 failed" in c.value for c in app.caption), [c.value for c in app.caption]


def test_the_inspector_shows_input_beside_answer_from_row_one(app, llm, ledger):
    start_transform(app, llm, WIDE)
    wait(ledger, run_id_of(app))
    app.run()
    inspect = widget(app, "number_input", f"inspect_transform_{run_id_of(app)}")
    assert inspect.value == 1
    assert any(m.value == "**Input row**" for m in app.markdown)
    assert any(m.value == "**The model's answer**" for m in app.markdown)
    assert any(c.value.startswith("Reply to:") and "hello" in c.value for c in app.code)
    inspect.set_value(3).run()
    assert any("world" in c.value and c.value.startswith("Reply to:") for c in app.code)
    assert any(m.value.startswith("**Row 3**") for m in app.markdown)


def test_newest_answers_show_while_the_run_runs_and_a_second_start_asks_first(app, llm, ledger):
    slow = b"id,text\n1,[[slow:6]] slow\n2,fast\n"
    start_transform(app, llm, slow)
    run_id = run_id_of(app)
    deadline = time.monotonic() + 10
    while ledger.run_counts(run_id).succeeded < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    app.run()
    no_exceptions(app)
    assert ledger.get_run(run_id).status == RunStatus.RUNNING
    assert any(m.value == "**Latest answers**" for m in app.markdown)
    latest = next(d for d in app.dataframe if "ai_output" in d.value.columns)
    assert latest.value.index.tolist() == [2] and "Reply to:" in latest.value.loc[2, "ai_output"]
    # the spot-check inspector opens on the newest answer, numbered as in the table
    assert widget(app, "number_input", f"inspect_transform_{run_id}_live").value == 2
    # Pause and Stop are told apart by their help
    helps = {b.label: b.help for b in app.button if b.label in ("Pause", "Stop")}
    assert helps["Pause"] != helps["Stop"] and "Resume" in helps["Pause"]

    widget(app, "button", "tf_full").click().run()
    no_exceptions(app)
    assert any(f"Run #{run_id} is still running" in w.value for w in app.warning)
    assert len(ledger.list_runs()) == 1  # nothing started before the answer
    widget(app, "button", "transform_confirm_yes").click().run()
    no_exceptions(app)
    assert len(ledger.list_runs()) == 2
    for run in ledger.list_runs():
        app_engine_stop(run.id)


def app_engine_stop(run_id: int) -> None:
    from handai_engine import get_engine

    get_engine().stop(run_id)


def test_what_came_back_counts_the_answers_and_the_errors(app, llm, ledger):
    start_transform(app, llm, b"id,text\n1,a\n2,a\n3,b\n4,[[error:400]] no\n", columns=["text"])
    wait(ledger, run_id_of(app))
    app.run()
    no_exceptions(app)
    charts = [m.value for m in app.markdown]
    assert "**Most common values of ai\\_output**" in charts
    assert "**Latency over time**" in charts and "**Errors over time**" in charts


def test_generate_offers_no_sent_columns_toggle_with_no_input(app, llm, ledger):
    widget(app, "selectbox", "handai_provider").set_value("custom").run()
    widget(app, "text_input", "handai_base_url_custom").set_value(llm.url).run()
    widget(app, "selectbox", "handai_model_pick_custom").set_value("fake-small").run()
    app.switch_page("pages/generate.py").run()
    widget(app, "number_input", "gen_rows").set_value(2).run()
    widget(app, "button", "gen_full").click().run()
    wait(ledger, run_id_of(app))
    app.run()
    no_exceptions(app)
    assert results_element(app).value.index.tolist() == [1, 2]
    assert not any(t.label.startswith("Only the sent columns") for t in app.toggle), [t.label for t in app.toggle]


# -- output fields, examples, History -------------------------------------------------------------
def test_category_fields_and_editors_without_none_cells():
    from handai_prompts import make_schema
    from handai_ui.schema_editor import editor_frame

    frame = editor_frame([])
    assert frame.iloc[0].tolist() == ["", "string", "", ""]
    schema = make_schema([{"name": "mood", "type": "category", "description": "", "labels": "pos, neg"}])
    assert schema["fields"]["mood"]["labels"] == ["pos", "neg"]


def test_history_lists_figures_before_the_file_name_and_loads_settings_into_transform(app, llm, ledger):
    start_transform(app, llm, WIDE, columns=["id", "text"])
    run_id = run_id_of(app)
    wait(ledger, run_id)
    app.switch_page("pages/history.py").run()
    no_exceptions(app)
    listing = app.dataframe[0].value
    cols = list(listing.columns)
    assert cols.index("rows") < cols.index("failed") < cols.index("tokens") < cols.index("cost $") < cols.index("input")
    widget(app, "button", "hist_load").click().run()
    no_exceptions(app)
    app.switch_page("pages/transform.py").run()  # AppTest does not follow st.switch_page
    app.file_uploader[0].set_value(("wide.csv", WIDE, "text/csv")).run()
    no_exceptions(app)
    assert widget(app, "text_area", "tf_prompt").value == "Echo."
    assert widget(app, "multiselect", "tf_columns").value == ["id", "text"]
    assert widget(app, "selectbox", "handai_provider").value == "custom"


def test_a_past_runs_settings_are_edited_before_resuming_and_logged(app, llm, ledger):
    start_transform(app, llm, WIDE)
    run_id = run_id_of(app)
    wait(ledger, run_id)
    app.run()
    widget(app, "number_input", f"transform_edit_{run_id}_concurrency").set_value(3)
    widget(app, "text_input", f"transform_edit_{run_id}_model").set_value("fake-large")
    next(b for b in app.button if b.label == "Save the changes").click().run()
    no_exceptions(app)
    run = ledger.get_run(run_id)
    assert run.model == "fake-large" and run.concurrency == 3
    assert any("Settings changed" in lg.message for lg in ledger.logs(run_id))


def test_settings_does_not_say_ready_before_an_endpoint_and_keeps_the_tested_card_open(app, llm):
    app.switch_page("pages/settings.py").run()
    no_exceptions(app)
    labels = [e.label for e in app.expander]
    custom = next(label for label in labels if label.startswith("Custom"))
    assert "ready" not in custom and "no endpoint" in custom
    widget(app, "text_input", "set_base_url_custom").set_value(llm.url).run()
    widget(app, "button", "set_test_custom").click().run()
    no_exceptions(app)
    card = next(e for e in app.expander if e.label.startswith("Custom"))
    assert card.proto.expanded


def test_generate_shows_the_same_estimate_as_transform(app):
    app.switch_page("pages/generate.py").run()
    no_exceptions(app)
    assert any(c.value.startswith("Estimate for 20 rows") for c in app.caption), [c.value for c in app.caption]


def test_transform_offers_examples_under_the_instruction(app, llm):
    app.file_uploader[0].set_value(("wide.csv", WIDE, "text/csv")).run()
    no_exceptions(app)
    assert any(e.label.startswith("Examples (optional)") for e in app.expander)


# -- steering: which rows, pre-flight, saved instructions -----------------------------------------
def test_choose_the_first_rows_and_the_run_records_which(app, llm, ledger):
    widget(app, "selectbox", "handai_provider").set_value("custom").run()
    widget(app, "text_input", "handai_base_url_custom").set_value(llm.url).run()
    widget(app, "selectbox", "handai_model_pick_custom").set_value("fake-small").run()
    app.file_uploader[0].set_value(("wide.csv", WIDE, "text/csv")).run()
    widget(app, "text_area", "tf_prompt").set_value("Echo.").run()
    widget(app, "segmented_control", "tf_rows_mode").set_value("first").run()
    widget(app, "number_input", "tf_rows_n").set_value(2).run()
    no_exceptions(app)
    assert any("the first 2 of 3 rows" in c.value for c in app.caption)
    assert any("context window" in c.value for c in app.caption)  # the pre-flight check
    button = widget(app, "button", "tf_full")
    assert button.label == "Run the 2 chosen rows"
    button.click().run()
    no_exceptions(app)
    run = ledger.get_run(run_id_of(app))
    assert run.total_rows == 2
    assert "first 2" in run.params.get("selection", "")


def test_save_and_load_an_instruction_with_its_examples(app, ledger):
    app.file_uploader[0].set_value(("wide.csv", WIDE, "text/csv")).run()
    widget(app, "text_area", "tf_prompt").set_value("Say the mood.").run()
    widget(app, "text_input", "tf_instr_name").set_value("mood").run()
    widget(app, "button", "tf_instr_save").click().run()
    no_exceptions(app)
    assert ledger.instructions()["mood"]["text"] == "Say the mood."
    widget(app, "text_area", "tf_prompt").set_value("Something else.").run()
    widget(app, "button", "tf_instr_load").click().run()
    no_exceptions(app)
    assert widget(app, "text_area", "tf_prompt").value == "Say the mood."
    widget(app, "button", "tf_instr_delete").click().run()
    assert "mood" not in ledger.instructions()
