"""Generate's form loaded back whole from History (a long description, the variables that cycled,
the template), and its description edited before the run is done again (AppTest)."""

from __future__ import annotations

from handai_db import ACTIVE_STATUSES, RunStatus
from handai_prompts import generation_description, generation_prompts
from tests.helpers import no_exceptions, wait_until, widget
from tests.test_ui_results import run_id_of

DESCRIPTION = ("Short customer complaints about late deliveries, in varied English; " * 5).strip()
TOPICS = {"topic": ["a", "b"]}


def use_fake_server(app, llm) -> None:
    widget(app, "selectbox", "handai_provider").set_value("custom").run()
    widget(app, "text_input", "handai_base_url_custom").set_value(llm.url).run()
    widget(app, "selectbox", "handai_model_pick_custom").set_value("fake-small").run()


def generate(app, ledger) -> int:
    widget(app, "button", "gen_full").click().run()
    no_exceptions(app)
    rid = run_id_of(app)
    wait_until(lambda: ledger.get_run(rid).status not in ACTIVE_STATUSES, 30, f"run {rid} to finish")
    app.run()
    return rid


def load_back(app) -> None:
    app.switch_page("pages/history.py").run()
    widget(app, "button", "hist_load").click().run()
    app.switch_page("pages/generate.py").run()
    no_exceptions(app)


def test_a_long_description_and_its_variables_load_back_into_generate(app, llm, ledger):
    assert len(DESCRIPTION) > 300
    use_fake_server(app, llm)
    app.switch_page("pages/generate.py").run()
    widget(app, "segmented_control", "gen_schema_mode").set_value("Free-form").run()
    widget(app, "text_area", "gen_desc").set_value(DESCRIPTION).run()
    widget(app, "number_input", "gen_rows").set_value(4).run()
    app.session_state["gen_vars_rows"] = [{"variable": "topic", "values (comma-separated)": "a, b"}]
    first = generate(app, ledger)
    assert ledger.get_run(first).params["variables"] == TOPICS
    app.session_state["gen_vars_rows"] = []  # the page forgets them: only History brings them back
    widget(app, "text_area", "gen_desc").set_value("something else").run()
    load_back(app)
    assert widget(app, "text_area", "gen_desc").value == DESCRIPTION
    assert widget(app, "segmented_control", "gen_schema_mode").value == "Free-form"
    assert widget(app, "number_input", "gen_rows").value == 4
    again = generate(app, ledger)
    run = ledger.get_run(again)
    assert again != first and run.params["description"] == DESCRIPTION and run.params["variables"] == TOPICS
    assert sorted(r.user for r in llm.requests()) == [
        f"Write record {i} of 4. topic: {'abab'[i - 1]}." for i in range(1, 5)
    ]
    assert [r.input["topic"] for r in ledger.results(again)] == ["a", "b", "a", "b"]  # answered from the cache


def test_a_templates_edited_description_loads_back_under_its_template(app, llm, ledger):
    use_fake_server(app, llm)
    app.switch_page("pages/generate.py").run()
    name = widget(app, "selectbox", "gen_template").value
    widget(app, "text_area", f"gen_desc_{name}").set_value(DESCRIPTION).run()
    widget(app, "number_input", "gen_rows").set_value(2).run()
    first = generate(app, ledger)
    assert ledger.get_run(first).params["template"] == name
    widget(app, "text_area", f"gen_desc_{name}").set_value("changed").run()
    load_back(app)
    assert widget(app, "segmented_control", "gen_schema_mode").value == "Template"
    assert widget(app, "text_area", f"gen_desc_{name}").value == DESCRIPTION


def test_the_description_is_edited_before_a_rerun_and_the_new_run_sends_it(app, llm, ledger):
    use_fake_server(app, llm)
    app.switch_page("pages/generate.py").run()
    widget(app, "segmented_control", "gen_schema_mode").set_value("Free-form").run()
    widget(app, "text_area", "gen_desc").set_value(DESCRIPTION).run()
    widget(app, "number_input", "gen_rows").set_value(2).run()
    first = generate(app, ledger)
    app.switch_page("pages/history.py").run()
    assert widget(app, "text_area", f"history_edit_{first}_desc").value == DESCRIPTION
    widget(app, "text_area", f"history_edit_{first}_desc").set_value("Angry tweets about trains.")
    next(b for b in app.button if b.label == "Save the changes").click().run()
    no_exceptions(app)
    assert generation_description(ledger.get_run(first).system_prompt) == "Angry tweets about trains."
    assert any(line.message.startswith("Settings changed") for line in ledger.logs(first))
    widget(app, "button", "hist_clone").click().run()
    no_exceptions(app)
    clone = max(r.id for r in ledger.list_runs())
    wait_until(lambda: ledger.get_run(clone).status == RunStatus.COMPLETED, 30, "the new run")
    assert {r.system.split("\n\n")[0] for r in llm.requests()[-2:]} == {
        generation_prompts("Angry tweets about trains.", 2)[0]
    }
    load_back(app)
    assert widget(app, "text_area", "gen_desc").value == "Angry tweets about trains."


def test_a_generate_prompt_gives_back_its_description():
    system, _ = generation_prompts("  Tweets\nabout {trains}  ", 3, ["topic"])
    assert generation_description(system) == "Tweets\nabout {trains}"
    assert generation_description("Classify the sentiment.") is None
