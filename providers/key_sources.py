"""Where a provider's key comes from, in one fixed order (DESIGN decision 5):

    typed in this browser session → .streamlit/secrets.toml → environment variable
    → the encrypted "remember on this computer" store

The store is opt-in. Keys are encrypted at rest with Fernet (AES + HMAC, from `cryptography`) in
`keys.enc`; where the key that unlocks them lives decides what the store protects against:

- `backend == "keyring"`: in the operating system's keyring (macOS Keychain, Windows Credential
  Locker, the Secret Service of a Linux desktop), through the `keyring` package. A copy of the data
  folder (a backup, a sync, a lost disk) holds only ciphertext.
- `backend == "file"`: where no such keyring exists (a headless server, a container; keyring's
  fail/null backends, or only the plaintext ones of keyrings.alt), in `keys.secret` beside the
  ciphertext, readable only by the user: no more than the file's permissions.

Only the Fernet key goes into the keyring, not the API keys: one keyring entry per data folder
(one unlock prompt, not one per provider), `names()` keeps working (keyring cannot list entries),
both backends share one encrypted file format, and moving an old store over is moving one secret.
A `keys.secret` left from before the keyring is moved into it (read back and compared before the
file is deleted), and ciphertext that no key at hand opens is set aside, never overwritten.
`PYTHON_KEYRING_BACKEND=keyring.backends.fail.Keyring` forces the file store (test.sh sets it).

`KeyStore.describe()` says the same in one plain paragraph for the place where the user opts in.
None of these sources is the run database, a log or an export.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

import keyring
from cryptography.fernet import Fernet, InvalidToken
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null

from .keys import clean_key
from .registry import PROVIDERS

log = logging.getLogger(__name__)

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


class KeyStoreError(RuntimeError):
    """The store could not remember or forget a key; the message says why, in plain words."""


KEYRING_SERVICE = "Handai"
# keyring backend module → the name its users know it by.
KEYRING_NAMES = {
    "keyring.backends.macOS": "the macOS Keychain",
    "keyring.backends.Windows": "Windows Credential Locker",
    "keyring.backends.SecretService": "the desktop keyring (Secret Service)",
    "keyring.backends.libsecret": "the desktop keyring (Secret Service)",
    "keyring.backends.kwallet": "KWallet",
}


def usable_keyring(backend: KeyringBackend | None) -> bool:
    """A recommended keyring (priority ≥ 1, keyring's own rule). Not: keyring's fail and null
    backends, a chainer with nothing recommended first, nor low-priority plaintext backends
    (keyrings.alt), which would protect no more than our own file."""
    try:
        if backend is None or isinstance(backend, fail.Keyring | null.Keyring):
            return False
        if isinstance(backend, chainer.ChainerBackend):
            chained = backend.backends  # highest priority first; writes go to the first
            return bool(chained) and usable_keyring(chained[0])
        return backend.priority >= 1
    except Exception:  # a backend whose viability check fails (no D-Bus session, …)
        return False


@cache
def system_keyring() -> KeyringBackend | None:
    """The operating system's keyring, or None on a machine without a usable one (looked up once)."""
    try:
        backend = keyring.get_keyring()
    except Exception:  # a broken keyringrc.cfg or PYTHON_KEYRING_BACKEND
        log.warning("No usable keyring", exc_info=True)
        return None
    return backend if usable_keyring(backend) else None


def keyring_name(backend: KeyringBackend) -> str:
    if isinstance(backend, chainer.ChainerBackend) and backend.backends:
        backend = backend.backends[0]
    return KEYRING_NAMES.get(type(backend).__module__) or f"the system keyring ({backend.name})"


def _shown(path: Path) -> str:
    home = Path.home()
    return f"~/{path.relative_to(home)}" if path.is_relative_to(home) else str(path)


def _decrypt(key: bytes | None, token: bytes) -> bytes | None:
    if not key:
        return None
    try:
        return Fernet(key).decrypt(token)
    except (InvalidToken, ValueError):
        return None


def _opens(key: bytes | None, token: bytes) -> bool:
    return _decrypt(key, token) is not None


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, readable only by the user."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    tmp.replace(path)


class KeyStore:
    """Keys the user chose to remember, encrypted in `keys.enc`; the key that opens it is in the
    system keyring where there is one, else in `keys.secret` (0600) beside it.

    `use_keyring`: True finds the system keyring, False never uses one, a `KeyringBackend` is used
    if it is a usable one (tests). `backend` is "keyring" or "file"; `backend_name` says where in
    words the user knows; `describe()` says what that protects against and what not.
    """

    def __init__(self, folder: Path | None = None, *, use_keyring: bool | KeyringBackend = True) -> None:
        self.folder = folder or data_dir()
        self.secret_path = self.folder / "keys.secret"
        self.data_path = self.folder / "keys.enc"
        self._use_keyring = use_keyring
        # One keyring entry per data folder, so two folders (or test runs) never share a key.
        self.keyring_account = str(self.folder.expanduser().absolute())

    # -- where the key lives ------------------------------------------------------------------
    @cached_property
    def keyring_backend(self) -> KeyringBackend | None:
        if self._use_keyring is False:
            return None
        backend = system_keyring() if self._use_keyring is True else self._use_keyring
        return backend if usable_keyring(backend) else None

    @property
    def backend(self) -> str:
        return "file" if self.keyring_backend is None else "keyring"

    @property
    def backend_name(self) -> str:
        if self.keyring_backend is None:
            return f"the file {_shown(self.secret_path)}"
        return keyring_name(self.keyring_backend)

    def describe(self) -> str:
        """Where remembered keys are kept, what that protects against and what not, for the UI."""
        data = _shown(self.data_path)
        if self.keyring_backend is not None:
            name = self.backend_name
            return (
                f"Remembered keys are encrypted in {data}; the key that opens them is kept in {name}, "
                "which your operating system unlocks when you log in. This protects them in copies of that "
                "folder (backups, sync, a lost disk) and from other user accounts on this computer; it does "
                f"not protect them from programs you run while logged in, which can ask {name} for them."
            )
        return (
            f"Remembered keys are encrypted in {data}, but this computer has no system keyring, so the key "
            f"that opens them is kept beside them in {_shown(self.secret_path)}, readable only by your user "
            "account. This keeps keys out of your projects and their backups or sync, and from being read by "
            "accident; it does not protect them from anyone or anything that can read your user's files "
            "(a copy of your home folder, a program you run, an administrator)."
        )

    # -- the Fernet key -------------------------------------------------------------------------
    def _read_secret_file(self) -> bytes | None:
        try:
            return self.secret_path.read_bytes().strip() or None
        except FileNotFoundError:
            return None

    def _file_key(self, create: bool) -> bytes | None:
        found = self._read_secret_file()
        if found is not None or not create:
            return found
        self.folder.mkdir(parents=True, exist_ok=True)
        new = Fernet.generate_key()
        try:
            fd = os.open(self.secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
        except FileExistsError:  # another session made it first
            return self._read_secret_file()
        with os.fdopen(fd, "wb") as fh:
            fh.write(new)
        return new

    def _keyring_put(self, backend: KeyringBackend, key: bytes) -> bool:
        """Store `key` in the keyring and read it back; True only when it is there."""
        try:
            backend.set_password(KEYRING_SERVICE, self.keyring_account, key.decode())
            return backend.get_password(KEYRING_SERVICE, self.keyring_account) == key.decode()
        except Exception:
            log.warning("Could not write to %s", keyring_name(backend), exc_info=True)
            return False

    def _migrate(self, backend: KeyringBackend, stored: bytes | None, legacy: bytes) -> bytes:
        """A keys.secret from before the keyring, or from a session that could not reach it. The
        file is deleted only once the keyring's key opens everything the file's key opened."""
        token = self._read(self.data_path)
        if stored is None:
            if not self._keyring_put(backend, legacy):
                return legacy  # keep working from the file; try again next time
            stored = legacy
        elif stored != legacy and token is not None and _opens(legacy, token):
            # Keys remembered while the keyring was out of reach: re-encrypt them under the
            # keyring's key (which still opens what was set aside then) instead of replacing it.
            self._write(stored, self._load_with(stored) | self._load_with(legacy))
            for path in self._set_aside_paths():  # now re-encrypted, among them the old keys.enc
                if _opens(legacy, path.read_bytes()):
                    path.unlink()
        elif stored != legacy and token is not None and not _opens(stored, token):
            return stored  # neither key opens keys.enc: change nothing
        self.secret_path.unlink(missing_ok=True)
        return stored

    def _key(self, create: bool) -> bytes | None:
        backend = self.keyring_backend
        if backend is None:
            return self._file_key(create)
        try:
            found = backend.get_password(KEYRING_SERVICE, self.keyring_account)
        except Exception as exc:
            if not create:
                log.warning("Could not read %s", keyring_name(backend), exc_info=True)
                return self._read_secret_file()
            raise KeyStoreError(
                f"Could not read {keyring_name(backend)} ({type(exc).__name__}: {exc}); nothing was changed."
            ) from exc
        stored = found.encode() if found else None
        legacy = self._read_secret_file()
        if legacy is not None:
            return self._migrate(backend, stored, legacy)
        if stored is not None or not create:
            return stored
        new = Fernet.generate_key()
        if not self._keyring_put(backend, new):
            raise KeyStoreError(f"Could not save a key in {keyring_name(backend)}; nothing was remembered.")
        return new

    # -- the encrypted file ---------------------------------------------------------------------
    @staticmethod
    def _read(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def _set_aside_paths(self) -> list[Path]:
        numbered = {p: p.name.rpartition("-")[2] for p in self.folder.glob("keys.enc.unreadable-*")}
        return sorted((p for p, n in numbered.items() if n.isdigit()), key=lambda p: int(numbered[p]))

    def _load_with(self, key: bytes | None) -> dict[str, str]:
        """Every key that `key` opens: in files set aside (oldest first), then in keys.enc."""
        keys: dict[str, str] = {}
        if not key:
            return keys
        for path in [*self._set_aside_paths(), self.data_path]:
            token = self._read(path)
            plain = None if token is None else _decrypt(key, token)
            try:
                found = json.loads(plain) if plain else None
            except ValueError:
                continue
            if isinstance(found, dict):
                keys.update({k: v for k, v in found.items() if isinstance(v, str)})
        return keys

    def _load(self) -> dict[str, str]:
        return self._load_with(self._key(create=False))

    def _write(self, key: bytes, keys: dict[str, str]) -> None:
        """Encrypt `keys` into keys.enc. A keys.enc that `key` does not open is set aside, never
        overwritten (it opens again when the keyring it was written with is back); files set aside
        that `key` opens were merged by `_load` and go."""
        self.folder.mkdir(parents=True, exist_ok=True)
        old = self._read(self.data_path)
        if old is not None and not _opens(key, old):
            n = len(self._set_aside_paths()) + 1
            while (aside := self.data_path.with_name(f"keys.enc.unreadable-{n}")).exists():
                n += 1
            self.data_path.replace(aside)
            log.warning("%s does not open with the key at hand; moved to %s", self.data_path, aside)
        _write_private(self.data_path, Fernet(key).encrypt(json.dumps(keys).encode()))
        for path in self._set_aside_paths():
            if _opens(key, path.read_bytes()):
                path.unlink()

    def _save(self, keys: dict[str, str]) -> None:
        key = self._key(create=True)
        assert key is not None
        self._write(key, keys)

    def get(self, name: str) -> str | None:
        return self._load().get(name)

    def set(self, name: str, key: str) -> None:
        """Remember `key` for `name`; raises KeyStoreError (nothing changed) if the keyring refuses."""
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
