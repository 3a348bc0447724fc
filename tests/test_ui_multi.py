"""AppTest for the pages of several models: Compare, Consensus and Pipeline run against the fake
server (whose models disagree by name), their tables, figures and filters; History lists such a
run with its models, opens its table, retries its failed cells and loads it back into its page;
Pause and Resume of a running comparison send every cell once."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from handai_db import ACTIVE_STATUSES, Database, Run, RunStatus
from handai_ui.shown_columns import sent_columns
from handai_ui.wide_table import Layout
from research.compare import compare_plan, compare_table
from research.consensus import consensus_plan, consensus_table
from research.pipeline import pipeline_plan
from tests.fake_llm_server import odd_third
from tests.helpers import no_exceptions, wait_until, widget
from tests.test_ui_coding import save_codebook

REVIEWS = [
    "I love it",
    "Broken on day one",
    "It is fine",
    "Too expensive for what it is",
    "Great value",
    "Meh",
    "Arrived late but works",
    "Would buy again",
    "Not as described",
]
CSV = ("id,text,score\n" + "".join(f"{i},{t},{i % 5}\n" for i, t in enumerate(REVIEWS, 1))).encode()


def sent(i: int, text: str) -> str:
    """The user message a row sends with columns id and text as JSON."""
    return json.dumps({"id": str(i), "text": text}, ensure_ascii=False)


def run_id(at: AppTest) -> int:
    value = at.query_params["run"]
    return int(value[0] if isinstance(value, list) else value)


def finish(at: AppTest, ledger: Database, timeout: float = 30) -> int:
    rid = run_id(at)
    wait_until(lambda: ledger.get_run(rid).status not in ACTIVE_STATUSES, timeout, f"run {rid} to finish")
    at.run()
    no_exceptions(at)
    return rid


def use_custom(at: AppTest, llm) -> None:
    widget(at, "selectbox", "handai_provider").set_value("custom").run()
    widget(at, "text_input", "handai_base_url_custom").set_value(llm.url).run()


def upload(at: AppTest, page: str) -> None:
    at.switch_page(page).run()
    at.file_uploader[0].set_value(("reviews.csv", CSV, "text/csv")).run()
    no_exceptions(at)


def pick(at: AppTest, key: str, model: str, provider: str = "custom") -> None:
    widget(at, "selectbox", f"{key}_provider").set_value(provider).run()
    widget(at, "selectbox", f"{key}_model_{provider}").set_value(model).run()


def table(at: AppTest, column: str):
    """The wide results table: the dataframe that has this column and per-cell statuses."""
    return next(d.value for d in at.dataframe if column in d.value.columns and any("_status" in c for c in d.value))


def drawn(at: AppTest, column: str) -> tuple[list[str], set[str]]:
    """The wide table as drawn: its column order and its pinned columns."""
    element = next(d for d in at.dataframe if column in d.value.columns and any("_status" in c for c in d.value))
    config = json.loads(element.proto.columns) if element.proto.columns else {}
    return list(element.proto.column_order), {c for c, v in config.items() if isinstance(v, dict) and v.get("pinned")}


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def compare(at: AppTest, llm, models: list[str], columns: list[str] | None = None) -> None:
    use_custom(at, llm)
    upload(at, "pages/compare.py")
    widget(at, "text_area", "cmp_prompt").set_value("Classify the sentiment.").run()
    widget(at, "multiselect", "cmp_columns").set_value(columns or ["id", "text"]).run()
    widget(at, "number_input", "cmp_count").set_value(len(models)).run()
    for i, model in enumerate(models):
        pick(at, f"cmp_{i}", model)
    no_exceptions(at)


# -- the wide table's columns ------------------------------------------------------------------------
def test_the_layout_finds_answers_verdicts_and_statuses_wherever_the_tool_puts_them():
    compared = Layout.of(compare_table(compare_plan([("custom", "a"), ("custom", "b")], instruction="x"), ["id"]))
    assert (compared.inputs, compared.outputs, compared.extras) == (["id"], ["a", "b"], ["all_agree"])
    assert (compared.statuses, compared.errors) == (["a_status", "b_status"], ["a_error", "b_error"])
    assert compared.order() == ["all_agree", "a", "b", "a_status", "b_status", "id", "a_error", "b_error"]
    assert compared.order(inputs=[]) == ["all_agree", "a", "b", "a_status", "b_status", "a_error", "b_error"]
    plan = consensus_plan([("custom", "a"), ("custom", "b")], instruction="x", judge=("custom", "j"))
    judged = Layout.of(consensus_table(plan, ["id"]))
    assert judged.outputs == ["a", "b"]  # the judge's answer is the consensus column
    assert judged.extras == ["consensus", "agreed", "judge_reason", "decided_by"]
    assert judged.statuses == ["a_status", "b_status", "judge_status"]


# -- pages load -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("page", "title"),
    [("pages/compare.py", "Compare models"), ("pages/consensus.py", "Consensus"), ("pages/pipeline.py", "Pipeline")],
)
def test_the_new_pages_load_with_an_empty_database(app, page, title):
    app.switch_page(page).run()
    no_exceptions(app)
    assert [t.value for t in app.title] == [title]
    assert any("Upload a file" in i.value for i in app.info)


# -- Compare --------------------------------------------------------------------------------------
def test_compare_a_model_with_its_contrarian_shows_two_columns_and_no_agreement(app, llm, ledger):
    compare(app, llm, ["fake-small", "fake-contrarian"])
    widget(app, "button", "cmp_full").click().run()
    no_exceptions(app)
    finish(app, ledger)
    wide = table(app, "all_agree")
    assert list(wide["id"]) == [str(i) for i in range(1, len(REVIEWS) + 1)]
    assert list(wide["fake-small"]) == [f"Reply to: {sent(i, t)}" for i, t in enumerate(REVIEWS, 1)]
    assert list(wide["fake-contrarian"]) == [f"Contrary reply to: {sent(i, t)}" for i, t in enumerate(REVIEWS, 1)]
    assert list(wide["all_agree"]) == [False] * len(REVIEWS)
    assert metric(app, "Percent agreement") == "0.0%"
    assert metric(app, "Rows every model answered (n)") == f"{len(REVIEWS)} of {len(REVIEWS)}"
    assert metric(app, "Succeeded") == str(2 * len(REVIEWS))
    per_model = next(d.value for d in app.dataframe if "mean latency (ms)" in d.value.columns)
    assert list(per_model["model"]) == ["fake-small", "fake-contrarian"]
    assert list(per_model["succeeded"]) == [len(REVIEWS)] * 2 and list(per_model["failed"]) == [0, 0]
    assert {b.label for b in app.get("download_button")} >= {"CSV", "XLSX", "JSON", "JSONL"}
    assert sorted(r.model for r in llm.requests()) == sorted(["fake-small", "fake-contrarian"] * len(REVIEWS))


WIDE = (
    "id,c0,c1,c2,c3,c4,text\n"
    + "".join(
        f"{i},{','.join(f'v{i}_{j}' for j in range(5))},{t}\n"
        for i, t in enumerate(["fine", "[[error:400]] no", "ok"], 1)
    )
).encode()
INPUTS = ["id", "c0", "c1", "c2", "c3", "c4", "text"]


def test_compare_draws_the_verdict_answers_and_statuses_first_and_pinned(app, llm, ledger):
    use_custom(app, llm)
    app.switch_page("pages/compare.py").run()
    app.file_uploader[0].set_value(("wide.csv", WIDE, "text/csv")).run()
    widget(app, "text_area", "cmp_prompt").set_value("Classify.").run()
    widget(app, "multiselect", "cmp_columns").set_value(["id", "text"]).run()
    pick(app, "cmp_0", "fake-small")
    pick(app, "cmp_1", "fake-alt")
    widget(app, "button", "cmp_full").click().run()
    rid = finish(app, ledger)
    first = ["all_agree", "fake-small", "fake-alt", "fake-small_status", "fake-alt_status"]
    errors = ["fake-small_error", "fake-alt_error"]
    order, pinned = drawn(app, "all_agree")
    assert order == [*first, *INPUTS, *errors] and pinned == set(first)
    widget(app, "toggle", f"compare_only_sent_{rid}").set_value(True).run()
    no_exceptions(app)
    order, pinned = drawn(app, "all_agree")
    assert order == [*first, "id", "text", *errors] and pinned == set(first)
    charts = [m.value for m in app.markdown]
    assert "**Latency over time**" in charts and "**Errors over time**" in charts  # one row failed for both


def test_the_coder_draws_codes_and_status_first_with_ticks_that_stay_ticks(app, llm, ledger):
    save_codebook(ledger)
    use_custom(app, llm)
    app.switch_page("pages/coder.py").run()
    app.file_uploader[0].set_value(("wide.csv", WIDE, "text/csv")).run()
    widget(app, "multiselect", "qc_columns").set_value(["text"]).run()
    widget(app, "selectbox", "qc_model_provider").set_value("custom").run()
    widget(app, "selectbox", "qc_model_model_custom").set_value("fake-small").run()
    widget(app, "text_area", "qc_prompt").set_value("Find the reason.").run()
    widget(app, "button", "qc_full").click().run()
    rid = finish(app, ledger)
    first = ["code", "rationale", "evidence", "off_codebook", "evidence_found", "fake-small_status"]
    order, pinned = drawn(app, "evidence_found")
    assert order == [*first, *INPUTS, "fake-small_error"] and pinned == set(first)
    wide = table(app, "evidence_found")
    assert list(wide["fake-small_status"]) == ["succeeded", "failed", "succeeded"]
    assert [type(v) for v in wide["evidence_found"].dropna()] == [bool, bool]  # ticks, not "" or "False"
    widget(app, "toggle", f"coder_only_sent_{rid}").set_value(True).run()
    no_exceptions(app)
    order, _ = drawn(app, "evidence_found")
    assert order == [*first, "text", "fake-small_error"]


def test_compare_with_a_sometimes_different_model_and_the_disagreement_filter(app, llm, ledger):
    compare(app, llm, ["fake-small", "fake-alt"])
    widget(app, "button", "cmp_full").click().run()
    rid = finish(app, ledger)
    differs = [str(i) for i, t in enumerate(REVIEWS, 1) if odd_third(sent(i, t))]
    assert 0 < len(differs) < len(REVIEWS)  # the data really has both kinds of rows
    agreed = len(REVIEWS) - len(differs)
    assert metric(app, "Percent agreement") == f"{agreed / len(REVIEWS):.1%}"
    assert metric(app, "Rows where the models disagree") == str(len(differs))
    pairs = next(d.value for d in app.dataframe if "model A" in d.value.columns)
    assert pairs.to_dict("records") == [
        {
            "model A": "fake-small",
            "model B": "fake-alt",
            "n (rows both answered)": len(REVIEWS),
            "percent agreement": round(100 * agreed / len(REVIEWS), 1),
        }
    ]
    toggle = widget(app, "toggle", f"compare_disagree_{rid}")
    assert toggle.label == f"Only rows where the models disagree ({len(differs)})"
    toggle.set_value(True).run()
    shown = table(app, "all_agree")
    assert list(shown["id"]) == differs and not shown["all_agree"].any()


def test_compare_with_categories_counts_each_models_answers(app, llm, ledger, monkeypatch):
    """As provider openai (the fake server behind it) the schema's enum is sent, so answers are labels."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdefghijklmnop")
    ledger.set_setting("ui.base_url.openai", llm.url)
    widget(app, "selectbox", "handai_provider").set_value("openai").run()
    # AppTest can neither fill a data editor nor type a model the list lacks: both start from the
    # session state, as a loaded run or a typed name would leave it.
    app.session_state["cmp_fields_rows"] = [{"name": "sentiment", "type": "category", "labels": "pos, neg, neu"}]
    app.session_state["cmp_0_model_openai"] = "fake-small"
    app.session_state["cmp_1_model_openai"] = "fake-alt"
    upload(app, "pages/compare.py")
    widget(app, "text_area", "cmp_prompt").set_value("Classify the sentiment.").run()
    widget(app, "button", "cmp_full").click().run()
    no_exceptions(app)
    finish(app, ledger)
    wide = table(app, "all_agree")
    assert set(wide["fake-small.sentiment"]) <= {"pos", "neg", "neu"}
    assert set(wide["fake-alt.sentiment"]) <= {"pos", "neg", "neu"}
    assert (wide["fake-small.sentiment"] != wide["fake-alt.sentiment"]).tolist() == (~wide["all_agree"]).tolist()
    assert any(m.value.startswith("**sentiment: answers per model**") for m in app.markdown)


# -- Consensus ------------------------------------------------------------------------------------
def test_consensus_with_a_judge_of_disagreements(app, llm, ledger):
    use_custom(app, llm)
    upload(app, "pages/consensus.py")
    widget(app, "text_area", "cns_prompt").set_value("Summarise the review.").run()
    widget(app, "multiselect", "cns_columns").set_value(["id", "text"]).run()
    pick(app, "cns_0", "fake-small")
    pick(app, "cns_1", "fake-alt")
    widget(app, "toggle", "cns_use_judge").set_value(True).run()
    pick(app, "cns_judge", "fake-large")
    widget(app, "button", "cns_full").click().run()
    no_exceptions(app)
    rid = finish(app, ledger)
    wide = table(app, "consensus")
    differs = [odd_third(sent(i, t)) for i, t in enumerate(REVIEWS, 1)]
    assert 0 < sum(differs) < len(REVIEWS)
    assert list(wide["agreed"]) == [not d for d in differs]
    assert list(wide["decided_by"]) == ["judge" if d else "unanimous" for d in differs]
    judged = wide[wide["decided_by"] == "judge"]
    assert judged["judge_reason"].str.startswith("reason of").all() and judged["consensus"].str.len().gt(0).all()
    unanimous = wide[wide["decided_by"] == "unanimous"]
    assert list(unanimous["consensus"]) == list(unanimous["fake-small"]) and unanimous["judge_reason"].eq("").all()
    assert metric(app, "Decided: judge") == str(sum(differs))
    assert metric(app, "Decided: unanimous") == str(len(REVIEWS) - sum(differs))
    assert sum(r.model == "fake-large" for r in llm.requests()) == sum(differs)  # the judge read only those
    widget(app, "toggle", f"consensus_disagree_{rid}").set_value(True).run()
    assert len(table(app, "consensus")) == sum(differs)


def test_consensus_samples_at_the_default_temperature_are_warned_about(app, llm):
    use_custom(app, llm)
    upload(app, "pages/consensus.py")
    widget(app, "segmented_control", "cns_coders").set_value("One model, several samples").run()
    no_exceptions(app)
    assert any("samples of one model may all repeat" in w.value for w in app.warning)
    widget(app, "checkbox", "handai_set_temperature").check().run()
    widget(app, "number_input", "handai_temperature").set_value(0.9).run()
    assert not any("samples of one model may all repeat" in w.value for w in app.warning)


# -- Pipeline -------------------------------------------------------------------------------------
SPEC = {
    "steps": [
        {"name": "summary", "model": "custom:fake-small", "instruction": "Summarise.", "columns": ["text"]},
        {
            "name": "code",
            "model": "custom:fake-alt",
            "instruction": "Code the summary.",
            "template": "Summary: {summary}",
            "run_if": "number(score) >= 3",
            "fields": [{"name": "label", "type": "string"}],
        },
    ],
    "temperature": None,
    "max_tokens": None,
}


def test_the_sent_columns_are_those_any_step_sent_and_only_input_columns():
    pipeline = Run(input_columns=["id", "text", "score"], plan=pipeline_plan(SPEC).record())
    assert sent_columns(pipeline) == ["text"]  # the second step reads the first step's answer, not an input
    templated = Run(input_columns=["id", "text", "score"], row_template="{score}: {text} {nope}", columns=[])
    assert sent_columns(templated) == ["text", "score"]  # in the file's order
    chosen = Run(input_columns=["id", "text", "score"], row_template=None, columns=["id"])
    assert sent_columns(chosen) == ["id"]
    generated = Run(input_columns=[], row_template=None, columns=[])
    assert sent_columns(generated) == []


def paste_spec(at: AppTest, spec: dict | str) -> None:
    text = spec if isinstance(spec, str) else json.dumps(spec)
    widget(at, "text_area", "pl_spec_text").set_value(text).run()
    widget(at, "button", "pl_spec_load").click().run()
    no_exceptions(at)


def test_pipeline_spec_load_validation_and_a_run_that_skips_rows(app, llm, ledger):
    use_custom(app, llm)
    upload(app, "pages/pipeline.py")
    paste_spec(app, "{not json")
    assert len(app.error) == 1 and "not valid JSON (line 1" in app.error[0].value
    paste_spec(app, {**SPEC, "steps": [{**SPEC["steps"][0], "model": "nowhere:x"}]})
    assert len(app.error) == 1 and "Unknown provider 'nowhere'" in app.error[0].value

    broken = {**SPEC, "steps": [SPEC["steps"][0], {**SPEC["steps"][1], "template": "Summary: {nope}"}]}
    paste_spec(app, broken)  # loaded (its columns are checked against the data), and said once what is wrong
    names = sorted(w.value for w in app.text_input if w.label == "Step name")
    assert names == ["code", "summary"]
    assert len(app.error) == 1, [e.value for e in app.error]
    assert "Step 'code' uses {nope}, which is neither a column" in app.error[0].value
    assert widget(app, "button", "pl_full").disabled

    paste_spec(app, SPEC)
    assert not app.error
    assert not widget(app, "button", "pl_full").disabled
    # The spec the page exports makes the same plan as the one loaded.
    assert pipeline_plan(app.session_state["pl_last_spec"]).record() == pipeline_plan(SPEC).record()
    assert any(b.label == "Download the spec (JSON)" for b in app.get("download_button"))
    assert app.get("graphviz_chart")

    widget(app, "button", "pl_full").click().run()
    no_exceptions(app)
    rid = finish(app, ledger)
    wide = table(app, "code.label")
    runs = [i % 5 >= 3 for i in range(1, len(REVIEWS) + 1)]
    assert 0 < sum(runs) < len(REVIEWS)
    summaries = [f"Reply to: {json.dumps({'text': t})}" for t in REVIEWS]
    assert list(wide["summary"]) == summaries
    assert list(wide["code_status"]) == ["succeeded" if r else "skipped" for r in runs]
    skipped = wide[wide["code_status"] == "skipped"]
    assert skipped["code_error"].eq("Skipped: run_if is not true (number(score) >= 3).").all()
    assert skipped["code.label"].eq("").all()  # blank, not a guess
    coded = [r.user for r in llm.requests() if r.model == "fake-alt"]
    assert sorted(coded) == sorted(f"Summary: {s}" for s, r in zip(summaries, runs, strict=True) if r)
    assert metric(app, "Skipped") == str(len(REVIEWS) - sum(runs))
    widget(app, "toggle", f"pipeline_skipped_{rid}").set_value(True).run()
    assert len(table(app, "code.label")) == len(REVIEWS) - sum(runs)


# -- History --------------------------------------------------------------------------------------
def test_history_lists_a_comparison_opens_its_table_and_loads_it_back(app, llm, ledger):
    compare(app, llm, ["fake-small", "fake-contrarian"])
    widget(app, "button", "cmp_full").click().run()
    rid = finish(app, ledger)
    app.switch_page("pages/history.py").run()
    no_exceptions(app)
    listing = app.dataframe[0].value
    row = listing[listing["run"] == rid].iloc[0]
    assert (row["kind"], row["rows"], row["succeeded"]) == ("compare", len(REVIEWS), 2 * len(REVIEWS))
    assert row["model"] == "custom:fake-small, custom:fake-contrarian"
    wide = table(app, "all_agree")
    assert len(wide) == len(REVIEWS) and {"fake-small", "fake-contrarian"} <= set(wide.columns)
    assert "Classify the sentiment." in [c.value for c in app.code]  # what each model was sent
    assert metric(app, "Percent agreement") == "0.0%"
    widget(app, "button", "hist_clone").click().run()
    no_exceptions(app)
    clone = max(r.id for r in ledger.list_runs())
    assert clone != rid and ledger.get_run(clone).kind == "compare"
    wait_until(lambda: ledger.get_run(clone).status == RunStatus.COMPLETED, 30, "the new run to finish")
    assert ledger.run_counts(clone).succeeded == 2 * len(REVIEWS)  # the same rows, both models
    widget(app, "button", "hist_load").click().run()
    no_exceptions(app)
    assert [t.value for t in app.title] == ["Compare models"]
    assert widget(app, "text_area", "cmp_prompt").value == "Classify the sentiment."
    assert widget(app, "selectbox", "cmp_1_model_custom").value == "fake-contrarian"


def test_history_retries_the_failed_cells_of_a_comparison(app, llm, ledger):
    use_custom(app, llm)
    app.switch_page("pages/compare.py").run()
    bad = b"id,text\n1,fine\n2,[[error:400]] refused\n3,also fine\n"
    app.file_uploader[0].set_value(("bad.csv", bad, "text/csv")).run()
    widget(app, "text_area", "cmp_prompt").set_value("Echo.").run()
    pick(app, "cmp_0", "fake-small")
    pick(app, "cmp_1", "fake-alt")
    widget(app, "button", "cmp_full").click().run()
    rid = finish(app, ledger)
    assert ledger.run_counts(rid).failed == 2
    failed = widget(app, "toggle", f"compare_failed_cells_{rid}")
    assert failed.label == "Only rows with a failed cell (1)"
    failed.set_value(True).run()
    shown = table(app, "all_agree")
    assert list(shown["id"]) == ["2"] and list(shown["fake-small_status"]) == ["failed"]
    app.switch_page("pages/history.py").run()
    retry = widget(app, "button", f"history_retry_{rid}")
    assert retry.label == "Retry 2 failed cells"
    before = len(llm.requests())
    retry.click().run()
    no_exceptions(app)
    wait_until(lambda: ledger.get_run(rid).status not in ACTIVE_STATUSES, 30, "the retry to finish")
    again = llm.requests()[before:]
    assert sorted(r.model for r in again) == ["fake-alt", "fake-small"]
    assert all("[[error:400]]" in r.user for r in again)
    assert ledger.run_counts(rid).succeeded == 4


def test_pause_and_resume_a_comparison_sends_every_cell_once(app, llm, ledger):
    llm.configure(latency_ms=150)
    compare(app, llm, ["fake-small", "fake-alt"])
    widget(app, "slider", "handai_concurrency").set_value(1).run()  # one call per model at a time: slow enough
    widget(app, "button", "cmp_full").click().run()
    rid = run_id(app)
    wait_until(lambda: ledger.run_counts(rid).succeeded >= 2, 20, "some cells to finish")
    app.run()
    no_exceptions(app)
    live = next(d.value for d in app.dataframe if "429s" in d.value.columns)  # figures per model, live
    assert list(live["model"]) == ["fake-small", "fake-alt"]
    assert any(m.value == "**Latest answers**" for m in app.markdown)
    assert [link.proto.page for link in app.get("page_link")] == ["compare"]  # the sidebar links to its page
    widget(app, "button", f"compare_pause_{rid}").click().run()
    no_exceptions(app)
    wait_until(lambda: ledger.get_run(rid).status == RunStatus.PAUSED, 20, "the run to pause")
    paused = ledger.run_counts(rid)
    assert 0 < paused.succeeded < 2 * len(REVIEWS) and paused.pending
    app.run()
    widget(app, "button", f"compare_resume_{rid}").click().run()
    no_exceptions(app)
    finish(app, ledger)
    assert ledger.get_run(rid).status == RunStatus.COMPLETED
    sent_cells = [(r.model, r.user) for r in llm.requests()]
    assert len(sent_cells) == len(set(sent_cells)) == 2 * len(REVIEWS)
