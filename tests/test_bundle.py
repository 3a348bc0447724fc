"""The methods bundle (issue 13): provenance.json read from the ledger of real runs (the real
engine, the fake server over HTTP), METHODS.md written from it, and no key anywhere in the ZIP."""

from __future__ import annotations

import io
import json
import zipfile

import pandas as pd

from handai_db import RunStatus
from handai_engine import Engine, RunSettings
from handai_io import read_table
from providers import PROVIDERS, Connection
from research.codebook import Code, Codebook
from research.coder import coder_plan
from research.compare import compare_plan
from research.methods import METHODS, PROVENANCE, RESULTS, ROWS, methods_bundle, methods_text
from research.provenance import NOT_RECORDED, arm_endpoint, rows_hash
from tests.fake_llm_server import odd_third

ENV_KEY = "sk-proj-ENVSECRETabcdefghijklmnop1234"
CONN_KEY = "sk-proj-CONNSECRETqrstuvwxyz98765"
INSTRUCTION = "Say whether the review is positive."


def rows(n: int = 9) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"r{i}" for i in range(n)], "text": [f"review {i}: {'ok' * i}" for i in range(n)]})


def finish(engine, run_id: int, conn) -> None:
    engine.start(run_id, conn)
    final = engine.wait(run_id, 60)
    assert final.status == RunStatus.COMPLETED, final.stop_reason


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_a_transform_bundle_records_what_was_sent_and_holds_no_key(engine, db, llm, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    conn = Connection("custom", api_key=CONN_KEY, base_url=llm.url)
    settings = RunSettings("custom", "fake-small", system_prompt=INSTRUCTION, columns=["text"], temperature=0.2)
    data = rows()
    data.loc[2, "text"] += " [[flaky:1]]"  # one retry
    data.loc[5, "text"] += " [[context]]"  # one permanent failure
    run_id = engine.create_transform_run(data, settings, conn, input_name="reviews.csv", input_hash="abc123")
    finish(engine, run_id, conn)

    files = unzip(methods_bundle(db, run_id))
    assert sorted(files) == sorted([RESULTS, ROWS, PROVENANCE, METHODS])
    for name, content in files.items():
        text = content.decode()
        assert ENV_KEY not in text and CONN_KEY not in text, name
    prov = json.loads(files[PROVENANCE])
    sent = llm.requests()[0]
    step = prov["steps"][0]
    assert step["sent"]["model"]["system_message"] == sent.system  # exactly what the server received
    assert step["sent"]["model"]["parameters"] == {"temperature": 0.2}
    assert prov["arms"][0]["model"] == "fake-small" and prov["arms"][0]["endpoint"]["base_url"] == llm.url
    assert prov["arms"][0]["model_reported"] == {"fake-small": 8}  # the server named the model asked for
    assert prov["input"] == {
        "name": "reviews.csv",
        "sha256": "abc123",
        "columns": ["id", "text"],
        "rows_sha256": rows_hash(data),
        "selection": None,
    }
    outcome = prov["outcome"]
    assert outcome["rows"] == outcome["cells"] == 9
    assert outcome["cells_by_status"] == {"succeeded": 8, "failed": 1, "skipped": 0, "pending": 0}
    assert outcome["failed_by_error_kind"] == {"context_too_long": 1}
    assert outcome["calls_sent"] == len(llm.requests()) == 10 and outcome["retries"] == 1
    assert prov["run"]["started"] and prov["run"]["finished"]
    assert prov["software"]["libraries"]["pandas"] == pd.__version__
    table = read_table(files[RESULTS], RESULTS).df
    assert table["text"].tolist() == data["text"].tolist()
    methods = files[METHODS].decode()
    assert "9 rows of reviews.csv" in methods and "fake-small" in methods
    assert "10 calls were sent in all (1 of them retries)" in methods
    assert "1 answers failed (context_too_long: 1)" in methods
    assert sent.system in methods  # the appendix holds the instruction in full
    assert "reported as" not in methods


def test_a_key_in_the_instruction_or_the_log_is_masked(engine, db, llm, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    conn = Connection("custom", api_key=CONN_KEY, base_url=llm.url)
    prompt = f"Use {ENV_KEY} and {CONN_KEY} nowhere."
    settings = RunSettings("custom", "fake-small", system_prompt=prompt, columns=["text"])
    run_id = engine.create_transform_run(rows(2), settings, conn)
    db.log(run_id, "info", f"connected with {CONN_KEY}")
    finish(engine, run_id, conn)
    blob = b"".join(unzip(methods_bundle(db, run_id)).values()).decode()
    assert ENV_KEY not in blob and CONN_KEY not in blob
    assert "nowhere" in blob


def test_a_compare_bundle_has_each_model_and_the_agreement(engine, db, llm):
    conn = Connection("custom", api_key="k", base_url=llm.url)
    plan = compare_plan([("custom", "fake-small"), ("custom", "fake-alt")], instruction=INSTRUCTION, columns=["text"])
    data = rows(12)
    run_id = engine.create_plan_run(data, plan, conn, RunSettings("custom", "unused"))
    finish(engine, run_id, conn)
    prov = json.loads(unzip(methods_bundle(db, run_id))[PROVENANCE])
    assert [a["model"] for a in prov["arms"]] == ["fake-small", "fake-alt"]
    assert [a["cells_by_status"] for a in prov["arms"]] == [{"succeeded": 12}, {"succeeded": 12}]
    assert prov["outcome"]["rows"] == 12 and prov["outcome"]["cells"] == 24
    assert prov["plan"]["tool"] == "compare"
    users = [json.dumps({"text": t}) for t in data["text"]]
    agree = sum(not odd_third(u) for u in users) / len(users)
    assert prov["agreement"]["percent_agreement"] == agree
    assert f"percent agreement = {agree:.3f}" in methods_text(prov)


def test_a_coder_bundle_names_the_codebook_version_its_endpoint_and_the_human_coders(engine, db, llm):
    codebook = Codebook("Complaints", (Code("price", "Cost."), Code("quality", "Breaks."), Code("delivery", "Late.")))
    ref = {"id": 7, "name": "Complaints", "version": 3}
    endpoint = {"custom": {"base_url": llm.url}}
    models = [("custom", "fake-small"), ("custom", "fake-alt")]
    plan = coder_plan(codebook, models, task="Code it.", columns=["text"], codebook_ref=ref, endpoints=endpoint)
    conn = Connection("custom", api_key="k", base_url=llm.url)
    run_id = engine.create_plan_run(rows(6), plan, conn, RunSettings("custom", "unused"))
    finish(engine, run_id, conn)
    db.save_ratings(run_id, "Ana", {i: "price" for i in range(6)})
    db.save_ratings(run_id, "Ben", {0: "price", 1: None})
    prov = json.loads(unzip(methods_bundle(db, run_id))[PROVENANCE])
    assert prov["codebook"]["ref"] == ref
    assert [c["name"] for c in prov["codebook"]["content"]["codes"]] == ["price", "quality", "delivery"]
    assert [a["endpoint"] for a in prov["arms"]] == [{"base_url": llm.url}] * 2
    assert prov["ratings"]["human_coders"] == 2
    assert prov["ratings"]["raters"]["Ben"] == {"kind": "human", "rows": 2, "missing": 1}
    assert prov["agreement"]["n_units"] == 6  # two models and two humans
    assert prov["steps"][0]["output_schema"]["fields"]["code"]["labels"] == ["price", "quality", "delivery", "none"]
    text = methods_text(prov)
    assert "codebook 'Complaints', version 3" in text and f"via {llm.url}" in text


def bundle_record(db, run_id: int) -> tuple[dict, str]:
    files = unzip(methods_bundle(db, run_id))
    return json.loads(files[PROVENANCE]), files[METHODS].decode()


def test_the_model_the_provider_reported_is_kept_per_cell_and_by_the_cache(engine, db, llm):
    dated = "fake-small-2024-08-06"
    llm.configure(reported_models={"fake-small": dated})
    conn = Connection("custom", api_key="k", base_url=llm.url)
    settings = RunSettings("custom", "fake-small", system_prompt=INSTRUCTION, columns=["text"])
    first = engine.create_transform_run(rows(4), settings, conn)
    finish(engine, first, conn)
    assert [(r.model_reported, r.cached) for r in db.results(first)] == [(dated, False)] * 4
    assert db.reported_models(first) == {(0, 0): {dated: 4}}

    llm.configure(reported_models={"fake-small": "fake-small-2099-01-01"})  # a newer snapshot now
    again = engine.create_transform_run(rows(4), settings, conn)
    finish(engine, again, conn)
    assert len(llm.requests()) == 4  # every answer of the rerun came from the cache...
    assert [(r.model_reported, r.cached) for r in db.results(again)] == [(dated, True)] * 4  # ...with its model

    for run_id in (first, again):
        prov, methods = bundle_record(db, run_id)
        assert prov["arms"][0]["model"] == "fake-small" and prov["arms"][0]["model_reported"] == {dated: 4}
        assert f"fake-small (custom, via {llm.url}, reported as {dated})" in methods


def test_each_arm_names_every_model_id_reported_and_a_reply_without_one_claims_none(engine, db, llm):
    first_id, second_id = "fake-small-2024-08-06", "fake-small-2024-11-20"
    llm.configure(reported_models={"fake-small": first_id, "fake-alt": None})
    conn = Connection("custom", api_key="k", base_url=llm.url)
    plan = compare_plan([("custom", "fake-small"), ("custom", "fake-alt")], instruction=INSTRUCTION, columns=["text"])
    data = rows(4)
    data.loc[[1, 3], "text"] += " [[flaky:2]]"  # both arms' first calls for these rows fail; retried later
    run_id = engine.create_plan_run(data, plan, conn, RunSettings("custom", "unused", max_retries=0))
    engine.start(run_id, conn)
    engine.wait(run_id, 60)
    assert db.run_counts(run_id).failed == 4  # rows 1 and 3, each arm
    llm.configure(reported_models={"fake-small": second_id, "fake-alt": None})
    engine.retry_failed(run_id, conn)
    assert engine.wait(run_id, 60).status == RunStatus.COMPLETED

    assert db.reported_models(run_id) == {(0, 0): {first_id: 2, second_id: 2}}  # fake-alt made no claim
    assert {r.model_reported for r in db.results(run_id) if r.arm == 1} == {None}
    prov, methods = bundle_record(db, run_id)
    assert [a["model_reported"] for a in prov["arms"]] == [{first_id: 2, second_id: 2}, {}]
    assert f"reported as {first_id} for 2 answers, {second_id} for 2 answers" in methods
    assert methods.count("reported as") == 1  # fake-alt's replies named no model: no claim is made


def _bundle_page(run_id: int) -> None:
    from handai_ui.methods_bundle import methods_bundle_button

    methods_bundle_button(run_id, key=f"transform_{run_id}")


def test_the_results_download_offers_the_methods_bundle(ledger, llm):
    from streamlit.testing.v1 import AppTest

    engine = Engine(ledger)
    try:
        conn = Connection("custom", api_key="k", base_url=llm.url)
        settings = RunSettings("custom", "fake-small", system_prompt=INSTRUCTION, columns=["text"])
        run_id = engine.create_transform_run(rows(2), settings, conn)
        finish(engine, run_id, conn)
    finally:
        engine.shutdown()
    at = AppTest.from_function(_bundle_page, args=(run_id,), default_timeout=30).run()
    assert not at.exception
    [button] = [b for b in at.get("download_button") if b.label == "Methods bundle (ZIP)"]
    assert button.proto.id  # rendered; the ZIP itself is built only on click


def test_an_arm_on_its_providers_own_endpoint_says_which_one():
    assert arm_endpoint("openai", {}) == {"base_url": PROVIDERS["openai"].base_url, "default": True}
    assert arm_endpoint("custom", {}) == NOT_RECORDED  # a custom endpoint has no default to name
    assert arm_endpoint("custom", {"base_url": "http://x/v1", "api_key": "sk-no"}) == {"base_url": "http://x/v1"}
