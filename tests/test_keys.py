"""Key format checks: the wrong provider's key, paste debris, and never showing a whole key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handai_errors import mask_key
from providers import PROVIDERS, check_key_format, clean_key, identify_key

BODY = "A1b2C3d4E5f6G7h8J9k0LmNoPq"
KEYS = {
    "openai": f"sk-proj-{BODY}",
    "anthropic": f"sk-ant-api03-{BODY}",
    "google": f"AIzaSy{BODY}",
    "groq": f"gsk_{BODY}",
    "openrouter": f"sk-or-v1-{BODY}",
    "together": f"tgp_v1_{BODY}",
}


def test_openai_project_key_given_to_openrouter_is_named():
    check = check_key_format("openrouter", KEYS["openai"])
    assert check.level == "warning"
    assert "This looks like an OpenAI key" in check.message
    assert "OpenRouter keys start with sk-or-" in check.message


def test_openrouter_key_given_to_openai_is_named_although_it_starts_with_sk():
    check = check_key_format("openai", KEYS["openrouter"])
    assert check.level == "warning"
    assert check.message == "This looks like an OpenRouter key; OpenAI keys start with sk-."


def test_anthropic_key_given_to_openai_is_named():
    check = check_key_format("openai", KEYS["anthropic"])
    assert check.level == "warning"
    assert "This looks like an Anthropic key; OpenAI keys start with sk-" in check.message


@pytest.mark.parametrize("provider", sorted(KEYS))
def test_each_providers_own_key_is_ok(provider):
    check = check_key_format(provider, KEYS[provider])
    assert check.level == "ok", check.message
    assert check.key == KEYS[provider]


@pytest.mark.parametrize(
    ("provider", "key", "phrase"),
    [
        ("groq", KEYS["google"], "This looks like a Google Gemini key; Groq keys start with gsk_"),
        ("google", KEYS["groq"], "This looks like a Groq key; Google Gemini keys start with AIza"),
        ("anthropic", KEYS["openai"], "This looks like an OpenAI key; Anthropic keys start with sk-ant-"),
        ("together", KEYS["openai"], "This looks like an OpenAI key, not a Together AI key"),
        ("azure", KEYS["openrouter"], "This looks like an OpenRouter key, not an Azure OpenAI key"),
    ],
)
def test_keys_of_other_providers_are_named(provider, key, phrase):
    check = check_key_format(provider, key)
    assert check.level == "warning"
    assert phrase in check.message


def test_key_without_the_expected_prefix_warns_without_naming_a_provider():
    check = check_key_format("groq", "x" * 40)
    assert check.level == "warning"
    assert "Groq keys start with gsk_" in check.message


def test_short_key_warns():
    check = check_key_format("openai", "sk-proj-abc")
    assert check.level == "warning"
    assert "only 11 characters" in check.message


@pytest.mark.parametrize(
    ("key", "provider"),
    [
        ("sk-or-v1-abc", "openrouter"),
        ("sk-ant-api03-abc", "anthropic"),
        ("sk-proj-abc", "openai"),
        ("sk-svcacct-abc", "openai"),
        ("sk-abc", "openai"),
        ("gsk_abc", "groq"),
        ("AIzaSyabc", "google"),
        ("tgp_v1_abc", "together"),
        ("0123456789abcdef", None),
    ],
)
def test_identify_key(key, provider):
    assert identify_key(key) == provider


@pytest.mark.parametrize(
    "raw",
    [
        f"  {KEYS['openai']}  ",
        f"{KEYS['openai']}\n",
        f"\t{KEYS['openai']}\r\n",
        f'"{KEYS["openai"]}"',
        f"'{KEYS['openai']}'",
        f"Bearer {KEYS['openai']}",
        f'  "Bearer {KEYS["openai"]}"\n',
        f'OPENAI_API_KEY="{KEYS["openai"]}"',
        f"export OPENAI_API_KEY={KEYS['openai']}",
        f"\ufeff{KEYS['openai']}\u200b",
    ],
)
def test_clean_key_removes_paste_debris(raw):
    key, notes = clean_key(raw)
    assert key == KEYS["openai"]
    assert notes
    check = check_key_format("openai", raw)
    assert (check.level, check.key, check.cleaned) == ("ok", KEYS["openai"], notes)


def test_clean_key_leaves_a_clean_key_alone():
    assert clean_key(KEYS["groq"]) == (KEYS["groq"], [])
    assert clean_key(None) == ("", [])


@pytest.mark.parametrize("provider", ["openai", "openrouter", "azure", "together"])
@pytest.mark.parametrize("key", [None, "", "   \n"])
def test_missing_key_is_an_error_that_says_where_to_set_it(provider, key):
    check = check_key_format(provider, key)
    assert check.level == "error"
    assert check.message.startswith(f"No API key for {PROVIDERS[provider].name}.")
    assert PROVIDERS[provider].key_env in check.message


@pytest.mark.parametrize("provider", ["lmstudio", "ollama", "custom"])
def test_local_and_custom_servers_need_no_key(provider):
    assert check_key_format(provider, None).level == "ok"
    assert check_key_format(provider, "anything-the-server-wants").level == "ok"


@pytest.mark.parametrize(
    ("key", "phrase"),
    [
        ("sk-proj-…Ab12", "masked key"),
        ("sk-proj-abcd efgh ijkl mnop qrst", "space or line break in the middle"),
        ("sk-proj-abcdéfghijklmnopqrstuvwx", "characters API keys never have"),
    ],
)
def test_unusable_keys_are_errors(key, phrase):
    check = check_key_format("openai", key)
    assert check.level == "error"
    assert phrase in check.message


def test_unknown_provider_is_reported_not_raised():
    assert check_key_format("nope", KEYS["openai"]).level == "error"


def test_messages_show_keys_only_masked():
    check = check_key_format("openai", KEYS["openai"])
    assert mask_key(KEYS["openai"]) in check.message
    assert KEYS["openai"] not in check.message


def _revealed(key: str) -> str:
    """What mask_key shows of a key beyond its well-known prefix."""
    masked = mask_key(key)
    prefix, _, tail = masked.partition("…")
    assert key.startswith(prefix)
    return tail


KEY_PREFIXES = [
    "",
    "sk-",
    "sk-or-v1-",
    "sk-proj-",
    "sk-ant-api03-",
    "gsk_",
    "AIza",
    "tgp_v1_",
    "Bearer ",
    '"',
]
random_keys = st.builds(
    lambda prefix, body: prefix + body, st.sampled_from(KEY_PREFIXES), st.text(min_size=12, max_size=80)
)


@given(key=random_keys)
def test_mask_never_reveals_more_than_four_trailing_characters(key):
    key = key.strip()
    if len(key) >= 12:
        assert len(_revealed(key)) <= 4
        assert key not in mask_key(key)


@given(provider=st.sampled_from([*PROVIDERS, "nope"]), key=random_keys)
def test_check_key_format_never_raises_nor_shows_the_key(provider, key):
    check = check_key_format(provider, key)
    assert check.level in ("ok", "warning", "error")
    assert check.message
    if len(check.key) >= 12:
        assert check.key not in check.message
    if len(key.strip()) >= 12:
        assert key.strip() not in check.message
