"""Where a provider's key comes from, in one fixed order (DESIGN decision 5):

    typed in this browser session → .streamlit/secrets.toml → environment variable
    → the encrypted "remember on this computer" store

The store is opt-in, encrypted at rest with Fernet (AES + HMAC, from `cryptography`), and its key
file is readable only by the user. None of these sources is the run database, a log or an export.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from .keys import clean_key
from .registry import PROVIDERS

SOURCE_LABELS = {
    "session": "typed in this browser session",
    "secrets": ".streamlit/secrets.toml",
    "environment": "environment variable",
    "store": "remembered on this computer",
}


@dataclass(frozen=True)
class ResolvedKey:
    key: str | None
    source: str | None  # a key of SOURCE_LABELS, or None when no key was found

    @property
    def label(self) -> str:
        return SOURCE_LABELS.get(self.source or "", "no key")


def data_dir() -> Path:
    return Path(os.environ.get("HANDAI_DATA_DIR") or Path.home() / ".handai").expanduser()


class KeyStore:
    """Keys the user chose to remember, encrypted in `keys.enc` with a key in `keys.secret` (0600)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or data_dir()
        self.secret_path = self.folder / "keys.secret"
        self.data_path = self.folder / "keys.enc"

    def _fernet(self, create: bool) -> Fernet | None:
        if not self.secret_path.exists():
            if not create:
                return None
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
            with os.fdopen(fd, "wb") as fh:
                fh.write(Fernet.generate_key())
        return Fernet(self.secret_path.read_bytes().strip())

    def _load(self) -> dict[str, str]:
        fernet = self._fernet(create=False)
        if fernet is None or not self.data_path.exists():
            return {}
        try:
            return json.loads(fernet.decrypt(self.data_path.read_bytes()))
        except (InvalidToken, ValueError):
            return {}

    def _save(self, keys: dict[str, str]) -> None:
        fernet = self._fernet(create=True)
        assert fernet is not None
        token = fernet.encrypt(json.dumps(keys).encode())
        tmp = self.data_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "wb") as fh:
            fh.write(token)
        tmp.replace(self.data_path)

    def get(self, name: str) -> str | None:
        return self._load().get(name)

    def set(self, name: str, key: str) -> None:
        keys = self._load()
        keys[name] = key
        self._save(keys)

    def forget(self, name: str) -> None:
        keys = self._load()
        if keys.pop(name, None) is not None:
            self._save(keys)

    def names(self) -> list[str]:
        return sorted(self._load())


def resolve_key(
    provider_id: str,
    *,
    typed: Mapping[str, str] | None = None,
    secrets: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
    store: KeyStore | None = None,
) -> ResolvedKey:
    """The first non-empty key for this provider, and where it came from.

    `typed` maps provider id → key typed in this browser session; `secrets` is st.secrets (or any
    mapping) holding the env-var names; only this provider's own names are ever read, so one
    provider's key is never sent to another.
    """
    config = PROVIDERS[provider_id]
    env = os.environ if env is None else env
    name = config.key_env
    candidates: list[tuple[str, object]] = [("session", (typed or {}).get(provider_id))]
    if name:
        candidates += [("secrets", (secrets or {}).get(name)), ("environment", env.get(name))]
    candidates.append(("store", (store or KeyStore()).get(provider_id)))
    for source, value in candidates:
        if isinstance(value, str) and value.strip():
            return ResolvedKey(clean_key(value)[0], source)
    return ResolvedKey(None, None)


def resolve_endpoint(
    provider_id: str, *, secrets: Mapping[str, object] | None = None, env: Mapping[str, str] | None = None
) -> str | None:
    """Azure's endpoint from secrets or the environment (AZURE_OPENAI_ENDPOINT)."""
    name = PROVIDERS[provider_id].endpoint_env
    if not name:
        return None
    env = os.environ if env is None else env
    for value in ((secrets or {}).get(name), env.get(name)):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None
