"""A finished long run is announced: a toast saying how it ended, and the browser tab's title set
by a small script (the user is probably looking at another tab)."""

from __future__ import annotations

import handai_ui.announce
from handai_db import ACTIVE_STATUSES
from tests.helpers import no_exceptions, wait_until, widget

CSV = b'id,text\n1,fine\n2,"too long [[context]]"\n'


def test_a_finished_long_run_is_announced_in_a_toast_and_the_tab_title(app, llm, ledger, monkeypatch):
    monkeypatch.setattr(handai_ui.announce, "LONG_RUN_S", 0.0)  # every run counts as long
    widget(app, "selectbox", "handai_provider").set_value("custom").run()
    widget(app, "text_input", "handai_base_url_custom").set_value(llm.url).run()
    widget(app, "selectbox", "handai_model_pick_custom").set_value("fake-small").run()
    app.file_uploader[0].set_value(("two.csv", CSV, "text/csv")).run()
    widget(app, "text_area", "tf_prompt").set_value("Summarise.").run()
    widget(app, "button", "tf_full").click().run()
    no_exceptions(app)
    run_id = int(app.query_params["run"])
    wait_until(lambda: ledger.get_run(run_id).status not in ACTIVE_STATUSES, 30, f"run {run_id} to finish")
    app.run()
    no_exceptions(app)
    toasts = [t.value for t in app.toast]
    assert any(f"Run #{run_id} completed · 1 failed" in t for t in toasts), toasts
    scripts = [str(e.proto) for e in app.get("iframe")] + [str(e.proto) for e in app.get("html")]
    assert any("document.title" in s and f"Run #{run_id} completed" in s for s in scripts), scripts
    app.run()  # announced once, not on every rerun
    assert not any("completed · 1 failed" in t.value for t in app.toast)
