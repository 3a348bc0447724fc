"""Everything Handai knows about LLM providers: the registry (data), the one client factory,
model lists, key format checks and the connection test. No Streamlit, no persistence, no retries.
"""

from .capabilities import ModelCapabilities, capabilities, request_params
from .chat import ChatReply, ChatSender, chat_body
from .client import (
    NO_KEY_PLACEHOLDER,
    MissingEndpointError,
    MissingKeyError,
    chat_sender,
    check_connection,
    make_client,
)
from .context import context_window
from .errors import describe_error
from .key_sources import KeyStore, KeyStoreError, ResolvedKey, resolve_endpoint, resolve_key
from .keys import KeyCheck, check_key_format, clean_key, identify_key
from .models import ModelInfo, ModelList, list_models, local_servers_status
from .pricing import LIST_PRICES, Price, price_for
from .probe import ProbeResult, test_connection
from .registry import PROVIDERS, Connection, ProviderConfig, get_provider

__all__ = [
    "NO_KEY_PLACEHOLDER",
    "LIST_PRICES",
    "PROVIDERS",
    "Price",
    "Connection",
    "ProbeResult",
    "KeyCheck",
    "KeyStore",
    "KeyStoreError",
    "ResolvedKey",
    "MissingEndpointError",
    "MissingKeyError",
    "ModelCapabilities",
    "ModelInfo",
    "ModelList",
    "ProviderConfig",
    "capabilities",
    "check_key_format",
    "clean_key",
    "get_provider",
    "identify_key",
    "list_models",
    "local_servers_status",
    "make_client",
    "chat_sender",
    "ChatSender",
    "context_window",
    "ChatReply",
    "chat_body",
    "describe_error",
    "check_connection",
    "price_for",
    "request_params",
    "resolve_endpoint",
    "resolve_key",
    "test_connection",
]
