"""A pipeline step's few-shot examples: loaded with its spec, kept in the spec the page makes,
and sent to that step's model only, as earlier turns (Pipeline page in AppTest)."""

from __future__ import annotations

from tests.helpers import no_exceptions, widget
from tests.test_ui_multi import REVIEWS, finish, paste_spec, upload, use_custom
from tests.test_ui_steer_plans import turns  # noqa: F401  (a fixture)

PAIR = {"input": "great film", "output": "positive"}
SPEC = {
    "steps": [
        {"name": "mood", "model": "custom:fake-small", "instruction": "Say the mood.", "examples": [PAIR]},
        {"name": "why", "model": "custom:fake-alt", "instruction": "Say why.", "template": "{text}: {mood}"},
    ]
}


def test_a_steps_examples_go_with_its_spec_and_to_its_model_only(app, llm, ledger, turns):  # noqa: F811
    use_custom(app, llm)
    upload(app, "pages/pipeline.py")
    paste_spec(app, SPEC)
    assert [s.get("examples") for s in app.session_state["pl_last_spec"]["steps"]] == [[PAIR], None]
    widget(app, "button", "pl_full").click().run()
    no_exceptions(app)
    finish(app, ledger)
    first = [c for m, c in turns if m == "fake-small"]
    second = [c for m, c in turns if m == "fake-alt"]
    assert len(first) == len(second) == len(REVIEWS)
    assert all(c[:3] == [("system", "Say the mood."), ("user", "great film"), ("assistant", "positive")] for c in first)
    assert all(len(c) == 4 for c in first) and all(len(c) == 2 for c in second)


def test_a_compare_runs_examples_load_back_into_compare(app, llm, ledger):
    from tests.test_ui_multi import compare

    ledger.save_instruction("mood", "Say the mood.", [PAIR])
    compare(app, llm, ["fake-small", "fake-alt"])
    widget(app, "selectbox", "cmp_instr_pick").set_value("mood").run()
    widget(app, "button", "cmp_instr_load").click().run()
    widget(app, "button", "cmp_full").click().run()
    first = finish(app, ledger)
    app.session_state["cmp_examples_rows"] = []
    app.switch_page("pages/history.py").run()
    widget(app, "button", "hist_load").click().run()
    app.switch_page("pages/compare.py").run()
    no_exceptions(app)
    widget(app, "button", "cmp_full").click().run()
    again = finish(app, ledger)
    assert again != first and ledger.get_run(again).plan["steps"][0]["examples"] == [PAIR]
