"""The ten providers as data, and the record of how one run reaches one of them.

Adding a provider means adding a row to PROVIDERS, not a branch in the code: everything else
(client, key checks, model lists, connection test) reads these fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from handai_errors import mask_key

DEFAULT_AZURE_API_VERSION = "2024-10-21"
# The parts of a connection that say where requests go (never the key): what a run records, and
# what may be changed before a resume, retry or re-run.
ENDPOINT_FIELDS = ("base_url", "api_version", "deployment")


def recorded_endpoint(record: Mapping[str, Any] | None) -> dict[str, Any]:
    """The endpoint fields a record (a run's connection, an arm's endpoint) actually sets."""
    return {k: v for k, v in (record or {}).items() if k in ENDPOINT_FIELDS and v}


# OpenRouter ranks apps by these headers (optional, but they identify Handai's traffic).
OPENROUTER_HEADERS: Mapping[str, str] = MappingProxyType(
    {"HTTP-Referer": "https://github.com/handai", "X-Title": "Handai"}
)
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class ProviderConfig:
    id: str
    name: str
    base_url: str | None
    default_model: str
    models: tuple[str, ...]
    needs_key: bool
    key_prefixes: tuple[str, ...]
    key_env: str | None
    key_url: str | None
    extra_headers: Mapping[str, str] = field(hash=False)
    live_models: bool
    local: bool
    endpoint_env: str | None = None
    base_url_editable: bool = False


PROVIDERS: dict[str, ProviderConfig] = {
    config.id: config
    for config in (
        ProviderConfig(
            id="openai",
            name="OpenAI",
            base_url="https://api.openai.com/v1",
            default_model="gpt-4o-mini",
            models=(
                "gpt-4o-mini",
                "gpt-4o",
                "gpt-4.1-mini",
                "gpt-4.1-nano",
                "gpt-4.1",
                "gpt-5-mini",
                "gpt-5-nano",
                "gpt-5",
                "o4-mini",
                "o3",
            ),
            needs_key=True,
            key_prefixes=("sk-",),
            key_env="OPENAI_API_KEY",
            key_url="https://platform.openai.com/api-keys",
            extra_headers=_NO_HEADERS,
            live_models=False,
            local=False,
        ),
        ProviderConfig(
            id="anthropic",
            name="Anthropic",
            base_url="https://api.anthropic.com/v1/",
            default_model="claude-haiku-4-5",
            models=("claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-1"),
            needs_key=True,
            key_prefixes=("sk-ant-",),
            key_env="ANTHROPIC_API_KEY",
            key_url="https://console.anthropic.com/settings/keys",
            extra_headers=_NO_HEADERS,
            live_models=False,
            local=False,
        ),
        ProviderConfig(
            id="google",
            name="Google Gemini",
            base_url="https://generativelanguage.googleapis.com/v1beta/openai/",
            default_model="gemini-2.5-flash",
            models=("gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.5-pro"),
            needs_key=True,
            key_prefixes=("AIza",),
            key_env="GEMINI_API_KEY",
            key_url="https://aistudio.google.com/app/apikey",
            extra_headers=_NO_HEADERS,
            live_models=False,
            local=False,
        ),
        ProviderConfig(
            id="groq",
            name="Groq",
            base_url="https://api.groq.com/openai/v1",
            default_model="llama-3.3-70b-versatile",
            models=(
                "llama-3.3-70b-versatile",
                "llama-3.1-8b-instant",
                "openai/gpt-oss-120b",
                "openai/gpt-oss-20b",
                "meta-llama/llama-4-scout-17b-16e-instruct",
            ),
            needs_key=True,
            key_prefixes=("gsk_",),
            key_env="GROQ_API_KEY",
            key_url="https://console.groq.com/keys",
            extra_headers=_NO_HEADERS,
            live_models=False,
            local=False,
        ),
        ProviderConfig(
            id="together",
            name="Together AI",
            base_url="https://api.together.xyz/v1",
            default_model="meta-llama/Llama-3.3-70B-Instruct-Turbo",
            models=(
                "meta-llama/Llama-3.3-70B-Instruct-Turbo",
                "Qwen/Qwen2.5-72B-Instruct-Turbo",
                "deepseek-ai/DeepSeek-V3",
                "openai/gpt-oss-120b",
            ),
            needs_key=True,
            # Newer keys start with tgp_v1_, older ones are bare hex: no prefix is required.
            key_prefixes=(),
            key_env="TOGETHER_API_KEY",
            key_url="https://api.together.ai/settings/api-keys",
            extra_headers=_NO_HEADERS,
            live_models=False,
            local=False,
        ),
        ProviderConfig(
            id="azure",
            name="Azure OpenAI",
            base_url=None,  # the resource endpoint, e.g. https://my-resource.openai.azure.com
            default_model="gpt-4o-mini",
            models=("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "o4-mini"),
            needs_key=True,
            key_prefixes=(),
            key_env="AZURE_OPENAI_API_KEY",
            key_url="https://portal.azure.com/#view/Microsoft_Azure_ProjectOxford/CognitiveServicesHub/~/OpenAI",
            extra_headers=_NO_HEADERS,
            live_models=False,
            local=False,
            endpoint_env="AZURE_OPENAI_ENDPOINT",
            base_url_editable=True,
        ),
        ProviderConfig(
            id="openrouter",
            name="OpenRouter",
            base_url="https://openrouter.ai/api/v1",
            default_model="openai/gpt-4o-mini",
            models=(
                "openai/gpt-4o-mini",
                "openai/gpt-4.1-mini",
                "openai/gpt-5-mini",
                "anthropic/claude-haiku-4.5",
                "anthropic/claude-sonnet-4.5",
                "google/gemini-2.5-flash",
                "meta-llama/llama-3.3-70b-instruct",
                "deepseek/deepseek-chat",
            ),
            needs_key=True,
            key_prefixes=("sk-or-",),
            key_env="OPENROUTER_API_KEY",
            key_url="https://openrouter.ai/keys",
            extra_headers=OPENROUTER_HEADERS,
            live_models=True,
            local=False,
        ),
        ProviderConfig(
            id="lmstudio",
            name="LM Studio",
            base_url="http://localhost:1234/v1",
            default_model="",  # whatever model is loaded: taken from the server's list
            models=(),
            needs_key=False,
            key_prefixes=(),
            key_env=None,
            key_url=None,
            extra_headers=_NO_HEADERS,
            live_models=True,
            local=True,
            base_url_editable=True,
        ),
        ProviderConfig(
            id="ollama",
            name="Ollama",
            base_url="http://localhost:11434/v1",
            default_model="llama3.2",
            models=("llama3.2", "llama3.1", "qwen2.5", "mistral", "gemma3"),
            needs_key=False,
            key_prefixes=(),
            key_env=None,
            key_url=None,
            extra_headers=_NO_HEADERS,
            live_models=True,
            local=True,
            base_url_editable=True,
        ),
        ProviderConfig(
            id="custom",
            name="Custom (OpenAI-compatible)",
            base_url=None,
            default_model="",
            models=(),
            needs_key=False,  # many self-hosted servers take no key; one is sent when given
            key_prefixes=(),
            key_env="HANDAI_CUSTOM_API_KEY",
            key_url=None,
            extra_headers=_NO_HEADERS,
            live_models=True,
            local=False,
            base_url_editable=True,
        ),
    )
}


def get_provider(provider_id: str) -> ProviderConfig:
    """The provider's config; a KeyError that lists the valid ids (a typo in a CLI flag or a stored run)."""
    try:
        return PROVIDERS[provider_id]
    except KeyError:
        valid = ", ".join(PROVIDERS)
        raise KeyError(f"Unknown provider {provider_id!r}; choose one of: {valid}") from None


@dataclass(frozen=True, repr=False)
class Connection:
    """What a run needs to reach a provider. The key lives only in memory: store `safe_dict()`."""

    provider: str
    api_key: str | None = None
    base_url: str | None = None
    api_version: str | None = None
    deployment: str | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any], api_key: str | None) -> Connection:
        """The connection a run recorded (its `safe_dict()`), with the key looked up now (History,
        resume, the CLI)."""
        return cls(str(record["provider"]), api_key=api_key).at(record)

    def at(self, record: Mapping[str, Any] | None) -> Connection:
        """This connection (its provider and key) sent where `record` says: the one place a
        stored endpoint is applied. Only the record's non-empty endpoint fields replace ours, so
        a run recorded without a base URL keeps today's."""
        return replace(self, **recorded_endpoint(record))

    def endpoint(self) -> dict[str, Any]:
        """Where requests go, as a run records it (defaults filled in, empty fields left out)."""
        return recorded_endpoint(self.safe_dict())

    def effective_base_url(self) -> str | None:
        """The URL requests go to: the override if given, else the provider's own (Azure: the endpoint)."""
        url = (self.base_url or "").strip() or get_provider(self.provider).base_url
        return url.rstrip("/") if url else None

    def effective_api_version(self) -> str | None:
        """Azure needs an api-version on every request; the other providers take none."""
        if self.provider != "azure":
            return self.api_version
        return self.api_version or DEFAULT_AZURE_API_VERSION

    def safe_dict(self) -> dict[str, str | None]:
        """Everything but the key, with defaults filled in: what a run records it was sent to."""
        return {
            "provider": self.provider,
            "base_url": self.effective_base_url(),
            "api_version": self.effective_api_version(),
            "deployment": self.deployment,
        }

    def __repr__(self) -> str:
        return (
            f"Connection(provider={self.provider!r}, api_key={mask_key(self.api_key)!r}, "
            f"base_url={self.base_url!r}, api_version={self.api_version!r}, deployment={self.deployment!r})"
        )
