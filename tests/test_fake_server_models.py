"""The fake server's models disagree deterministically (Compare / Consensus / Pipeline tests rely
on it), seen through the real `openai` client; it counts the requests it is still answering, so a
test can wait for a killed client's calls to reach its log; and it runs by path as well as with -m."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from typing import Any

import openai
import pytest

from tests.fake_llm_server import DEFAULT_MODELS, FakeLLMServer, disagrees, odd_third
from tests.helpers import PYTHON, ROOT, wait_until

LABELS = ["positive", "negative", "neutral"]
SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "reply",
        "schema": {
            "type": "object",
            "properties": {"sentiment": {"type": "string", "enum": LABELS}, "note": {"type": "string"}},
        },
    },
}
ROWS = [f"review number {i}: {'great' if i % 2 else 'meh'}" for i in range(30)]


@pytest.fixture
def client(llm: FakeLLMServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=llm.url, api_key="sk-test", max_retries=0)


def ask(client: openai.OpenAI, model: str, user: str, response_format: dict[str, Any] | None = None) -> str:
    extra: dict[str, Any] = {"response_format": response_format} if response_format else {}
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": user}], **extra)
    return reply.choices[0].message.content or ""


def label(client: openai.OpenAI, model: str, user: str) -> str:
    return json.loads(ask(client, model, user, SCHEMA))["sentiment"]


def test_the_new_models_are_listed(client):
    listed = [m.id for m in client.models.list()]
    assert listed == DEFAULT_MODELS and {"fake-alt", "fake-contrarian"} <= set(listed)


def test_other_models_keep_the_baseline_enum_value(client):
    for model in ("fake-small", "fake-large", "gpt-4o-mini"):
        assert [label(client, model, u) for u in ROWS] == [LABELS[len(u) % 3] for u in ROWS]


def test_alt_disagrees_with_small_on_the_odd_third_only(client):
    odd = [u for u in ROWS if odd_third(u)]
    assert 0.15 * len(ROWS) <= len(odd) <= 0.55 * len(ROWS)  # about a third, and both kinds present
    for user in ROWS:
        small, alt = label(client, "fake-small", user), label(client, "fake-alt", user)
        assert (small != alt) == odd_third(user) == disagrees("fake-alt", user), user
        assert alt == LABELS[(len(user) + odd_third(user)) % 3]
        assert label(client, "fake-alt", user) == alt  # deterministic


def test_contrarian_always_disagrees_with_small(client):
    for user in ROWS:
        assert label(client, "fake-contrarian", user) != label(client, "fake-small", user)
        assert label(client, "fake-contrarian", user) == LABELS[(len(user) + 1) % 3]


def test_string_fields_follow_the_same_rule(client):
    for user in ROWS[:9]:
        note = json.loads(ask(client, "fake-alt", user, SCHEMA))["note"]
        assert note == (f"note (alt) of {user}" if odd_third(user) else f"note of {user}")
        assert json.loads(ask(client, "fake-small", user, SCHEMA))["note"] == f"note of {user}"


def test_text_replies_agree_except_on_the_odd_third(client):
    for user in ROWS:
        assert ask(client, "fake-small", user) == f"Reply to: {user}"
        alt = ask(client, "fake-alt", user)
        assert alt == (f"Alt reply to: {user}" if odd_third(user) else f"Reply to: {user}")
        assert ask(client, "fake-contrarian", user) == f"Contrary reply to: {user}"


def test_a_pick_marker_forces_one_models_answer(client):
    user = "meh [[pick:fake-alt=negative]]"
    assert label(client, "fake-alt", user) == "negative"
    assert label(client, "fake-small", user) == LABELS[len(user) % 3]
    assert ask(client, "fake-alt", user) == "negative"
    assert ask(client, "fake-small", user) == f"Reply to: {user}"
    both = "ok [[pick:neutral]]"
    assert {label(client, m, both) for m in ("fake-small", "fake-contrarian")} == {"neutral"}


def test_fixed_answers_per_model(client, llm):
    llm.configure(answers={"fake-large": "always this", "fake-alt": '{"sentiment": "neutral"}'})
    assert ask(client, "fake-large", "anything") == "always this"
    assert json.loads(ask(client, "fake-alt", "anything", SCHEMA)) == {"sentiment": "neutral"}
    assert ask(client, "fake-small", "anything") == "Reply to: anything"
    llm.reset()
    assert ask(client, "fake-large", "anything") == "Reply to: anything"


# -- the requests in flight --------------------------------------------------------------------
def test_a_request_is_in_flight_from_its_arrival_until_it_is_logged(client, llm):
    answered = threading.Thread(target=ask, args=(client, "fake-small", "A 1 [[slow:0.4]]"))
    answered.start()
    wait_until(lambda: llm.in_flight() == 1, 5, "the slow request to arrive")
    assert llm.requests() == []  # logged only once answered
    assert llm.in_flight(lambda r: r.user.startswith("A ")) == 1
    assert llm.in_flight(lambda r: r.user.startswith("B ")) == 0
    answered.join(5)
    assert llm.in_flight() == 0 and [r.user for r in llm.requests()] == ["A 1 [[slow:0.4]]"]


def test_a_request_whose_client_is_gone_is_still_answered_logged_and_then_out_of_flight(llm):
    """What a test of a killed process relies on: the server finishes the dropped client's call
    (aiohttp does not cancel the handler), so `in_flight() == 0` means it is in the log."""
    llm.configure(latency_ms=300)
    body = json.dumps({"model": "fake-small", "messages": [{"role": "user", "content": "gone"}]}).encode()
    head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    with socket.create_connection(("127.0.0.1", llm.port)) as sock:
        sock.sendall(head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        wait_until(lambda: llm.in_flight() == 1, 5, "the request to arrive")
    assert llm.requests() == []  # the client hung up mid-call
    wait_until(lambda: llm.in_flight() == 0, 5, "the dropped call to finish")
    assert [(r.user, r.status) for r in llm.requests()] == [("gone", 200)]


def test_a_request_that_fails_to_parse_leaves_flight_too(llm):
    with socket.create_connection(("127.0.0.1", llm.port)) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{oops")
        assert sock.recv(64).startswith(b"HTTP/1.1 500")
    assert llm.in_flight() == 0 and llm.requests() == []


def test_held_replies_wait_until_released_and_a_reset_releases_them_too(client, llm):
    llm.configure(hold=True)
    calls = [threading.Thread(target=ask, args=(client, "fake-small", f"held {i}")) for i in range(2)]
    for call in calls:
        call.start()
    wait_until(lambda: llm.in_flight() == 2, 5, "two held calls")
    assert llm.requests() == []
    llm.configure(hold=False)
    calls[0].join(5)
    calls[1].join(5)
    assert sorted(r.user for r in llm.requests()) == ["held 0", "held 1"]
    llm.configure(hold=True)
    late = threading.Thread(target=ask, args=(client, "fake-small", "held late"))
    late.start()
    wait_until(lambda: llm.in_flight() == 1, 5, "the late held call")
    llm.reset()  # a new test's server: nothing held over from the last one
    late.join(5)
    assert llm.in_flight() == 0 and [r.user for r in llm.requests()] == ["held late"]


# -- run on its own ------------------------------------------------------------------------------
def test_the_server_runs_by_path_from_any_folder(tmp_path):
    done = subprocess.run(
        [PYTHON, str(ROOT / "tests" / "fake_llm_server.py"), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "--latency-ms" in done.stdout and "[[flaky:2]]" in done.stdout
