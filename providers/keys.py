"""Key format checks that run before any request.

Most "invalid key" failures are a key pasted into the wrong provider's box, or pasted with
something around it. Both can be seen from the key's shape, before spending a request, and told
to the user in words that name the mistake. Messages show keys only through `mask_key`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from handai_errors import mask_key

from .registry import PROVIDERS

# Longest prefixes first: sk-or- and sk-ant- keys also start with OpenAI's sk-.
KEY_SHAPES: tuple[tuple[str, str], ...] = (
    ("sk-or-", "openrouter"),
    ("sk-ant-", "anthropic"),
    ("sk-", "openai"),
    ("gsk_", "groq"),
    ("AIza", "google"),
    ("tgp_v1_", "together"),
)
MIN_KEY_LENGTH = 20
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_ENV_ASSIGNMENT = re.compile(r"^(?:export\s+)?[A-Z][A-Z0-9_]*_(?:KEY|TOKEN)\s*[=:]\s*")
_QUOTES = "\"'`“”‘’"


@dataclass(frozen=True)
class KeyCheck:
    level: str  # "ok" | "warning" | "error"
    message: str
    key: str
    cleaned: list[str] = field(default_factory=list)


def clean_key(raw: str | None) -> tuple[str, list[str]]:
    """Strip what copy-and-paste adds around a key; each note says what was removed."""
    key = raw or ""
    notes: list[str] = []

    def note(text: str) -> None:
        if text not in notes:
            notes.append(text)

    visible = key.translate(_INVISIBLE)
    if visible != key:
        note("Removed invisible characters pasted with the key.")
        key = visible
    while True:  # every rule shortens the key, so this ends
        before = key
        if key.strip() != key:
            note("Removed spaces and line breaks around the key.")
            key = key.strip()
        if match := _ENV_ASSIGNMENT.match(key):
            note(f'Removed "{match.group(0).strip()}" in front of the key.')
            key = key[match.end() :]
        if len(key) >= 2 and key[0] in _QUOTES and key[-1] in _QUOTES:
            note("Removed quotes around the key.")
            key = key[1:-1]
        if key[:7].lower() == "bearer ":
            note('Removed "Bearer " in front of the key.')
            key = key[7:]
        if key == before:
            return key, notes


def identify_key(key: str) -> str | None:
    """The provider whose key shape this is, or None when the shape is not distinctive."""
    return next((provider for prefix, provider in KEY_SHAPES if key.startswith(prefix)), None)


def _a(name: str) -> str:
    return f"{'an' if name[0] in 'AEIOU' else 'a'} {name}"


def check_key_format(provider_id: str, key: str | None) -> KeyCheck:
    """Judge a key for a provider by its shape alone. Never raises; never shows the whole key."""
    key, notes = clean_key(key)

    def result(level: str, message: str) -> KeyCheck:
        return KeyCheck(level, message, key, notes)

    config = PROVIDERS.get(provider_id)
    if config is None:
        return result("error", f"Unknown provider {provider_id!r}.")
    if not key:
        if not config.needs_key:
            return result("ok", f"No API key needed for {config.name}.")
        return result("error", f"No API key for {config.name}. Set {config.key_env} or enter it in Settings.")
    if "…" in key or "***" in key:
        return result("error", "This is a masked key as shown on a key list; copy the full key instead.")
    if any(ch.isspace() for ch in key):
        return result("error", "The key has a space or line break in the middle; copy it again in one piece.")
    if not (key.isascii() and key.isprintable()):
        return result("error", "The key contains characters API keys never have; copy it again.")
    if config.local or config.id == "custom":
        return result("ok", f"The key will be sent to {config.name} as given.")
    other = identify_key(key)
    expected = " or ".join(config.key_prefixes)
    if other is not None and other != config.id:
        other_name = PROVIDERS[other].name
        if expected:
            return result("warning", f"This looks like {_a(other_name)} key; {config.name} keys start with {expected}.")
        return result("warning", f"This looks like {_a(other_name)} key, not {_a(config.name)} key.")
    if expected and not key.startswith(config.key_prefixes):
        return result("warning", f"{config.name} keys start with {expected}; this one does not ({mask_key(key)}).")
    if len(key) < MIN_KEY_LENGTH:
        return result("warning", f"This key is only {len(key)} characters long; copy the whole key from {config.name}.")
    return result("ok", f"The key looks like {_a(config.name)} key ({mask_key(key)}).")
