"""One rule turns a recorded endpoint back into a connection (`Connection.at`): only the record's
non-empty endpoint fields apply, never a key, and every caller (History, resume, the CLI, re-runs
from a bundle, a plan's arms) goes through it."""

from __future__ import annotations

from providers import Connection
from providers.registry import ENDPOINT_FIELDS, recorded_endpoint


def test_at_applies_only_the_records_non_empty_endpoint_fields():
    today = Connection("custom", api_key="sk-today", base_url="http://today/v1")
    moved = today.at({"provider": "other", "base_url": "http://recorded/v1", "api_version": "", "api_key": "stolen"})
    assert moved == Connection("custom", api_key="sk-today", base_url="http://recorded/v1")
    assert today.at({"base_url": None, "deployment": ""}) == today  # nothing recorded: today's endpoint
    assert today.at(None) == today


def test_from_record_is_at_with_the_records_provider():
    record = Connection("azure", "k", "https://res.openai.azure.com", "2024-10-21", "gpt4o").safe_dict()
    assert "api_key" not in record
    back = Connection.from_record(record, "sk-now")
    assert back == Connection("azure", "sk-now", "https://res.openai.azure.com", "2024-10-21", "gpt4o")
    assert Connection.from_record({"provider": "openai", "base_url": None}, None).base_url is None


def test_endpoint_is_what_a_run_records_without_empty_fields():
    conn = Connection("custom", api_key="k", base_url="http://x/v1/")
    assert conn.endpoint() == {"base_url": "http://x/v1"}
    assert set(recorded_endpoint(Connection("azure", "k", "https://r", None, "d").safe_dict())) <= set(ENDPOINT_FIELDS)


def test_the_endpoint_fields_are_defined_once():
    import handai_engine.runner as runner
    import handai_ui.model_picker as picker

    assert runner.ENDPOINT_FIELDS is ENDPOINT_FIELDS
    assert getattr(picker, "ENDPOINT_FIELDS", ENDPOINT_FIELDS) is ENDPOINT_FIELDS
