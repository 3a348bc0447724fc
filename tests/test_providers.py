"""The providers package against real HTTP on 127.0.0.1 (tests/fake_llm_server.py)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import openai
import pytest
from aiohttp import web

from handai_errors import ErrorKind, classify
from providers import (
    NO_KEY_PLACEHOLDER,
    PROVIDERS,
    Connection,
    MissingEndpointError,
    MissingKeyError,
    capabilities,
    chat_body,
    chat_sender,
    get_provider,
    list_models,
    local_servers_status,
    make_client,
    probe,
    request_params,
)
from providers.chat import SOCKET_HEADROOM
from tests.fake_llm_server import FakeLLM, FakeLLMServer

OPENAI_KEY = "sk-proj-A1b2C3d4E5f6G7h8J9k0LmNoPq"
OPENROUTER_KEY = "sk-or-v1-A1b2C3d4E5f6G7h8J9k0LmNoPq"
AZURE_KEY = "0123456789abcdef0123456789abcdef"


class RecordingLLM(FakeLLM):
    """The fake server, also keeping each chat request's path, query, headers and body."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[dict[str, Any]] = []

    def reset(self) -> None:
        super().reset()
        self.seen.clear()

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.seen.append(
            {
                "path": request.path,
                "query": dict(request.query),
                "headers": request.headers.copy(),
                "body": body,
            }
        )
        return await super().chat(request)


class OpenRouterLikeLLM(FakeLLM):
    """Answers /models the way OpenRouter does: context length and USD-per-token price strings."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model_requests: list[Any] = []

    async def models(self, request: web.Request) -> web.Response:
        self.model_requests.append(request.headers.copy())
        data = [
            {
                "id": "openai/gpt-4o-mini",
                "context_length": 128000,
                "pricing": {"prompt": "0.00000015", "completion": "0.0000006"},
            },
            {
                "id": "openrouter/auto",
                "context_length": 2000000,
                "pricing": {"prompt": "-1", "completion": "-1"},
            },
            {"id": "meta-llama/llama-3.3-70b-instruct:free", "context_length": 65536},
        ]
        return web.json_response({"data": data})


def _server(llm_class: type[FakeLLM]) -> FakeLLMServer:
    server = FakeLLMServer()
    server.llm = llm_class(server.llm.config)
    return server.start()


@pytest.fixture(scope="module")
def server():
    server = _server(RecordingLLM)
    yield server
    server.stop()


@pytest.fixture
def srv(server):
    server.reset()
    server.llm.seen.clear()
    return server


@pytest.fixture
def dead_url():
    """A base URL on a port nothing listens on: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def _complete(conn: Connection, model: str = "gpt-4o-mini", *, timeout: float = 30.0, **params: Any) -> Any:
    async def run() -> Any:
        sender = chat_sender(conn, model, concurrency=1, timeout=timeout)
        try:
            return await sender.send(chat_body(model, [{"role": "user", "content": "hello"}], params))
        finally:
            await sender.close()

    return asyncio.run(run())


# -- registry -----------------------------------------------------------------------------------


def test_registry_has_the_ten_providers_in_order_with_their_names():
    assert {pid: cfg.name for pid, cfg in PROVIDERS.items()} == {
        "openai": "OpenAI",
        "anthropic": "Anthropic",
        "google": "Google Gemini",
        "groq": "Groq",
        "together": "Together AI",
        "azure": "Azure OpenAI",
        "openrouter": "OpenRouter",
        "lmstudio": "LM Studio",
        "ollama": "Ollama",
        "custom": "Custom (OpenAI-compatible)",
    }
    assert list(PROVIDERS) == [cfg.id for cfg in PROVIDERS.values()]


@pytest.mark.parametrize(
    ("pid", "base_url", "key_env"),
    [
        ("openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
        ("anthropic", "https://api.anthropic.com/v1/", "ANTHROPIC_API_KEY"),
        ("google", "https://generativelanguage.googleapis.com/v1beta/openai/", "GEMINI_API_KEY"),
        ("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
        ("together", "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
        ("azure", None, "AZURE_OPENAI_API_KEY"),
        ("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
        ("lmstudio", "http://localhost:1234/v1", None),
        ("ollama", "http://localhost:11434/v1", None),
        ("custom", None, "HANDAI_CUSTOM_API_KEY"),
    ],
)
def test_registry_urls_and_key_variables(pid, base_url, key_env):
    cfg = get_provider(pid)
    assert (cfg.base_url, cfg.key_env) == (base_url, key_env)


@pytest.mark.parametrize("cfg", PROVIDERS.values(), ids=list(PROVIDERS))
def test_registry_rows_are_consistent(cfg):
    if cfg.needs_key:
        assert cfg.key_env and cfg.key_url
    assert cfg.local == (cfg.id in ("lmstudio", "ollama"))
    assert cfg.live_models or cfg.models
    assert not cfg.default_model or not cfg.models or cfg.default_model in cfg.models
    assert cfg.base_url or cfg.base_url_editable


def test_registry_specifics():
    assert get_provider("openrouter").extra_headers == {
        "HTTP-Referer": "https://github.com/handai",
        "X-Title": "Handai",
    }
    assert get_provider("azure").endpoint_env == "AZURE_OPENAI_ENDPOINT"
    assert {pid for pid, cfg in PROVIDERS.items() if cfg.live_models} >= {
        "openrouter",
        "lmstudio",
        "ollama",
        "custom",
    }
    assert get_provider("openai").key_prefixes == ("sk-",)
    assert get_provider("openrouter").key_prefixes == ("sk-or-",)


def test_unknown_provider_error_lists_the_valid_ids():
    with pytest.raises(KeyError, match="openai, anthropic, google"):
        get_provider("open-ai")


def test_connection_never_shows_its_key():
    conn = Connection("openai", api_key=OPENAI_KEY, base_url="https://proxy.example/v1/")
    assert OPENAI_KEY not in repr(conn) and OPENAI_KEY not in str(conn)
    assert "sk-proj-…NoPq" in repr(conn)
    assert conn.safe_dict() == {
        "provider": "openai",
        "base_url": "https://proxy.example/v1",
        "api_version": None,
        "deployment": None,
    }
    assert OPENAI_KEY not in json.dumps(conn.safe_dict())


def test_connection_fills_in_defaults():
    assert Connection("openrouter").effective_base_url() == "https://openrouter.ai/api/v1"
    assert Connection("custom").effective_base_url() is None
    assert Connection("azure", base_url="https://r.openai.azure.com").safe_dict()["api_version"] == "2024-10-21"


# -- client factory ------------------------------------------------------------------------------


def _connection_for(pid: str) -> Connection:
    if pid == "azure":
        return Connection(pid, api_key=AZURE_KEY, base_url="https://r.openai.azure.com", deployment="d")
    if pid == "custom":
        return Connection(pid, base_url="http://127.0.0.1:8000/v1")
    return Connection(pid, api_key=None if PROVIDERS[pid].local else f"{pid}-key-0123456789abcdef")


@pytest.mark.parametrize("pid", list(PROVIDERS))
def test_make_client_builds_for_every_provider(pid):
    conn = _connection_for(pid)
    sender = chat_sender(conn, "some-model", concurrency=8, timeout=30)
    client = sender.client
    try:
        assert client.max_retries == 0
        assert sender.sockets == 8 + SOCKET_HEADROOM
        assert client.timeout.read == 30 and sender.timeout.sock_read == 30
        if pid == "azure":
            assert isinstance(client, openai.AsyncAzureOpenAI)
            assert str(client.base_url) == "https://r.openai.azure.com/openai/deployments/d/"
            assert sender.url.startswith(
                "https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version="
            )
            assert sender.headers["api-key"] == conn.api_key
        else:
            assert str(client.base_url).rstrip("/") == conn.effective_base_url()
            assert sender.url == f"{conn.effective_base_url()}/chat/completions"
        for name, value in PROVIDERS[pid].extra_headers.items():
            assert client.default_headers[name] == value and sender.headers[name] == value
    finally:
        asyncio.run(sender.close())


def test_servers_without_a_key_get_the_placeholder():
    client = make_client(Connection("ollama"))
    assert client.api_key == NO_KEY_PLACEHOLDER
    asyncio.run(client.close())


def test_make_client_sends_the_cleaned_key():
    client = make_client(Connection("openai", api_key=f'  "{OPENAI_KEY}"\n'))
    assert client.api_key == OPENAI_KEY
    asyncio.run(client.close())


def test_missing_key_says_where_to_set_it(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)  # the SDK's own fallback must not be used
    with pytest.raises(MissingKeyError, match=r"No API key for OpenAI\. Set OPENAI_API_KEY or enter it in Settings"):
        make_client(Connection("openai"))


def test_missing_base_url_is_a_clear_error():
    with pytest.raises(MissingEndpointError, match="No base URL for Custom"):
        make_client(Connection("custom"))
    with pytest.raises(MissingEndpointError, match="AZURE_OPENAI_ENDPOINT"):
        make_client(Connection("azure", api_key=AZURE_KEY))


def test_openrouter_headers_and_key_reach_the_server(srv):
    conn = Connection("openrouter", api_key=OPENROUTER_KEY, base_url=srv.url)
    reply = _complete(conn)
    assert reply.text == "Reply to: hello" and reply.tokens_in > 0
    headers = srv.llm.seen[-1]["headers"]
    assert headers["HTTP-Referer"] == "https://github.com/handai"
    assert headers["X-Title"] == "Handai"
    assert headers["Authorization"] == f"Bearer {OPENROUTER_KEY}"


def test_azure_client_uses_the_deployment_path_version_and_api_key_header(srv):
    conn = Connection("azure", api_key=AZURE_KEY, base_url=srv.root, deployment="my-deployment")
    _complete(conn)
    seen = srv.llm.seen[-1]
    assert seen["path"] == "/openai/deployments/my-deployment/chat/completions"
    assert seen["query"] == {"api-version": "2024-10-21"}
    assert seen["headers"]["api-key"] == AZURE_KEY
    assert "Authorization" not in seen["headers"]


def test_azure_without_a_deployment_routes_by_the_model_in_the_body(srv):
    conn = Connection("azure", api_key=AZURE_KEY, base_url=srv.root)
    _complete(conn, model="gpt-4o-mini")
    assert srv.llm.seen[-1]["path"] == "/openai/deployments/gpt-4o-mini/chat/completions"


def test_refused_connection_is_a_connection_error_not_a_timeout(dead_url):
    conn = Connection("custom", base_url=dead_url)
    with pytest.raises(openai.APIConnectionError) as caught:
        _complete(conn, timeout=5)
    assert not isinstance(caught.value, openai.APITimeoutError)
    assert classify(caught.value, base_url=dead_url).kind == ErrorKind.NETWORK


def test_server_that_does_not_answer_in_time_is_a_timeout(srv):
    srv.configure(latency_ms=2000)
    with pytest.raises(openai.APITimeoutError):
        _complete(Connection("custom", base_url=srv.url), timeout=0.3)


# -- capabilities --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pid", "model"),
    [
        ("openai", "o1"),
        ("openai", "o3"),
        ("openai", "o3-mini-2025-01-31"),
        ("openai", "o4-mini"),
        ("openai", "gpt-5"),
        ("openai", "gpt-5-mini"),
        ("openai", "gpt-5.1"),
        ("azure", "o4-mini"),
        ("openrouter", "openai/o3-mini"),
        ("openrouter", "openai/gpt-5-mini:free"),
    ],
)
def test_reasoning_models_take_max_completion_tokens_and_no_temperature(pid, model):
    caps = capabilities(pid, model)
    assert caps.reasoning and not caps.supports_temperature
    assert caps.token_param == "max_completion_tokens"
    assert request_params(pid, model, temperature=0.3, max_tokens=50) == {"max_completion_tokens": 50}


@pytest.mark.parametrize(
    ("pid", "model"),
    [
        ("openai", "gpt-4o"),
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-4.1-mini"),
        ("groq", "llama-3-o1-foo"),
        ("groq", "openai/gpt-oss-120b"),
        ("openrouter", "openai/gpt-4o-mini"),
        ("ollama", "llama3.2:3b"),
        ("openai", "omni-moderation-latest"),
    ],
)
def test_other_models_take_max_tokens_and_temperature(pid, model):
    caps = capabilities(pid, model)
    assert not caps.reasoning and caps.supports_temperature
    assert request_params(pid, model, temperature=0.3, max_tokens=50) == {
        "temperature": 0.3,
        "max_tokens": 50,
    }


def test_none_means_provider_default_and_is_left_out():
    assert request_params("openai", "gpt-4o-mini") == {}
    assert request_params("openai", "gpt-4o-mini", temperature=0.0) == {"temperature": 0.0}


def test_anthropic_always_gets_a_token_limit_and_no_json_mode():
    assert request_params("anthropic", "claude-haiku-4-5") == {"max_tokens": 4096}
    assert request_params("anthropic", "claude-sonnet-4-5", max_tokens=100, json_mode=True) == {"max_tokens": 100}


@pytest.mark.parametrize(
    ("pid", "model", "expected"),
    [
        ("openai", "gpt-4o-mini", True),
        ("openai", "o3-mini", True),
        ("openai", "o1-mini", False),
        ("google", "gemini-2.5-flash", True),
        ("groq", "llama-3.3-70b-versatile", True),
        ("ollama", "llama3.2", True),
        ("lmstudio", "qwen2.5-7b-instruct", False),
        ("anthropic", "claude-haiku-4-5", False),
    ],
)
def test_json_mode_only_where_the_endpoint_supports_it(pid, model, expected):
    assert capabilities(pid, model).supports_json_mode is expected
    params = request_params(pid, model, json_mode=True)
    assert ("response_format" in params) is expected
    if expected:
        assert params["response_format"] == {"type": "json_object"}


def test_extra_parameters_pass_through_except_none():
    assert request_params("openai", "gpt-4o", extra={"top_p": 0.9, "seed": None}) == {"top_p": 0.9}


def test_request_params_are_what_the_server_receives(srv):
    conn = Connection("custom", base_url=srv.url)
    params = request_params("custom", "o3-mini", temperature=0.5, max_tokens=7, json_mode=True)
    _complete(conn, model="o3-mini", **params)
    body = srv.llm.seen[-1]["body"]
    assert body["max_completion_tokens"] == 7
    assert "temperature" not in body and "max_tokens" not in body
    assert body["response_format"] == {"type": "json_object"}


# -- model lists ---------------------------------------------------------------------------------


@pytest.mark.parametrize("pid", ["custom", "lmstudio", "ollama"])
def test_live_model_list_from_the_server(srv, pid):
    srv.configure(models=["model-a", "model-b"])
    result = list_models(Connection(pid, base_url=srv.url))
    assert result.live and result.message is None
    assert [m.id for m in result.models] == ["model-a", "model-b"]


def test_live_model_list_sends_the_key(srv):
    srv.configure(valid_keys=["custom-secret-0123456789"])
    assert list_models(Connection("custom", api_key="custom-secret-0123456789", base_url=srv.url)).live
    refused = list_models(Connection("custom", api_key="wrong-key-0123456789", base_url=srv.url))
    assert not refused.live
    assert "did not accept the API key" in refused.message


def test_local_server_that_is_not_started_is_named_quickly(dead_url):
    start = time.monotonic()
    result = list_models(Connection("ollama", base_url=dead_url))
    assert time.monotonic() - start < 2
    assert not result.live
    assert result.message == f"Ollama is not answering at {dead_url.removesuffix('/v1')} — is it started?"
    assert [m.id for m in result.models] == list(PROVIDERS["ollama"].models)


def test_custom_server_that_is_not_running(dead_url):
    result = list_models(Connection("custom", base_url=dead_url))
    assert not result.live and result.models == []
    assert result.message == f"Nothing is answering at {dead_url} — check the address and that the server is running."


def test_curated_list_for_cloud_providers_without_live_lists():
    result = list_models(Connection("anthropic", api_key="sk-ant-api03-x"))
    assert not result.live
    assert [m.id for m in result.models] == list(PROVIDERS["anthropic"].models)


def test_local_servers_status_probes_both_quickly():
    start = time.monotonic()
    status = local_servers_status(timeout=0.5)
    assert time.monotonic() - start < 3
    assert set(status) == {"lmstudio", "ollama"}


def test_openrouter_list_converts_prices_caches_refreshes_and_falls_back():
    server = _server(OpenRouterLikeLLM)
    conn = Connection("openrouter", api_key=OPENROUTER_KEY, base_url=server.url)
    try:
        first = list_models(conn)
        assert first.live
        models = {m.id: m for m in first.models}
        mini = models["openai/gpt-4o-mini"]
        assert mini.context_length == 128000
        assert mini.prompt_price == pytest.approx(0.15)
        assert mini.completion_price == pytest.approx(0.6)
        assert models["openrouter/auto"].prompt_price is None
        assert models["meta-llama/llama-3.3-70b-instruct:free"].completion_price is None
        headers = server.llm.model_requests[0]
        assert headers["X-Title"] == "Handai" and headers["Authorization"] == f"Bearer {OPENROUTER_KEY}"

        assert list_models(conn).models == first.models
        assert len(server.llm.model_requests) == 1  # served from the cache
        assert list_models(conn, refresh=True).live
        assert len(server.llm.model_requests) == 2
    finally:
        server.stop()
    assert list_models(conn).live  # still cached
    fallback = list_models(conn, refresh=True)
    assert not fallback.live
    assert fallback.message
    assert [m.id for m in fallback.models] == list(PROVIDERS["openrouter"].models)


# -- connection test -----------------------------------------------------------------------------


def test_connection_ok_with_latency(srv):
    result = probe.test_connection(Connection("custom", base_url=srv.url), "fake-small")
    assert result.ok and result.error is None
    assert result.latency_ms is not None and result.latency_ms > 0
    assert result.message.startswith("Connected to Custom (OpenAI-compatible) in ")
    assert result.message.endswith(" ms (fake-small).")
    seen = srv.llm.seen[-1]["body"]
    assert seen["messages"] == [{"role": "user", "content": "ping"}]
    assert seen["max_tokens"] == 1


def test_connection_to_a_reasoning_model_uses_max_completion_tokens(srv):
    assert probe.test_connection(Connection("custom", base_url=srv.url), "o3-mini").ok
    body = srv.llm.seen[-1]["body"]
    assert body["max_completion_tokens"] == 1 and "max_tokens" not in body


def test_connection_picks_a_model_the_local_server_has_loaded(srv):
    srv.configure(models=["qwen2.5-7b-instruct"])
    result = probe.test_connection(Connection("lmstudio", base_url=srv.url))
    assert result.ok and result.model == "qwen2.5-7b-instruct"


def test_wrong_openrouter_key_names_the_mix_up_without_showing_the_key(srv):
    srv.configure(valid_keys=[OPENROUTER_KEY], auth_style="openrouter")
    conn = Connection("openrouter", api_key=OPENAI_KEY, base_url=srv.url)
    result = probe.test_connection(conn, "openai/gpt-4o-mini")
    assert not result.ok
    assert result.error is not None and result.error.kind == ErrorKind.INVALID_KEY
    assert "OpenRouter did not accept this API key" in result.message
    assert "This looks like an OpenAI key; OpenRouter keys start with sk-or-" in result.message
    assert OPENAI_KEY not in result.message and OPENAI_KEY not in result.error.detail


def test_working_key_of_an_unexpected_shape_still_gets_the_hint(srv):
    result = probe.test_connection(Connection("openrouter", api_key=OPENAI_KEY, base_url=srv.url))
    assert result.ok
    assert "This looks like an OpenAI key" in result.message


def test_unknown_model(srv):
    srv.configure(strict_models=True)
    result = probe.test_connection(Connection("custom", base_url=srv.url), "no-such-model")
    assert not result.ok
    assert result.error is not None and result.error.kind == ErrorKind.MODEL_NOT_FOUND
    assert result.message == result.error.user_text()


def test_dead_endpoint_is_a_connection_error(dead_url):
    start = time.monotonic()
    result = probe.test_connection(Connection("openai", api_key=OPENAI_KEY, base_url=dead_url))
    assert time.monotonic() - start < 5
    assert not result.ok
    assert result.error is not None and result.error.kind == ErrorKind.NETWORK
    assert dead_url in result.message
    assert OPENAI_KEY not in result.message


def test_missing_key_sends_nothing(srv):
    result = probe.test_connection(Connection("openai", base_url=srv.url))
    assert not result.ok and result.error is None
    assert result.message == "No API key for OpenAI. Set OPENAI_API_KEY or enter it in Settings."
    assert srv.requests() == []


def test_connection_test_works_inside_a_running_event_loop(srv):
    async def from_async_code():
        return probe.test_connection(Connection("custom", base_url=srv.url), "fake-small")

    assert asyncio.run(from_async_code()).ok


def test_a_rejected_key_on_a_custom_endpoint_says_so_not_a_sentence_about_the_model_list(srv):
    srv.configure(valid_keys=["custom-secret-0123456789"])
    result = probe.test_connection(Connection("custom", api_key="wrong-key-0123456789", base_url=srv.url))
    assert not result.ok
    assert result.message.startswith("Custom (OpenAI-compatible) did not accept the key (HTTP 401).")
    assert result.error.kind == ErrorKind.INVALID_KEY and result.error.status == 401  # the card: "key rejected (401)"
    assert "listing models" not in result.message and "wrong-key-0123456789" not in result.message
