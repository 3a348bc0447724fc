"""The "remember on this computer" store: the Fernet key in the operating system's keyring where
there is one, the file store where there is not, moving an old store over without losing a key,
and never a key in clear text in the folder.

The keyring is the real `keyring` API (`KeyringBackend`) over a dict: a fake of the operating
system's service only, so every test runs the same on a laptop, a headless server and CI.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import keyring
import pytest
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keyring.backend import KeyringBackend
from keyring.backends import SecretService, Windows, chainer, fail, kwallet, null
from keyring.errors import KeyringLocked, PasswordDeleteError, PasswordSetError

from providers import KeyStore, KeyStoreError, resolve_key
from providers.key_sources import KEYRING_SERVICE, keyring_name, system_keyring, usable_keyring

KEY = "sk-proj-TOPSECRETtopsecret0123456789abcd"
OTHER = "gsk_OTHERSECRETothersecret0123456789"
THIRD = "sk-ant-api03-THIRDSECRETthird0123456789"


class DictKeyring(KeyringBackend):
    """A recommended keyring (priority ≥ 1, like the macOS Keychain) that keeps entries in a dict."""

    priority = 5

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise PasswordDeleteError("no such entry")


class PlaintextGradeKeyring(DictKeyring):
    """Like keyrings.alt's file backends: viable but not recommended (priority < 1)."""

    priority = 0.5


class LockedKeyring(DictKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("the collection is locked")

    set_password = get_password  # type: ignore[assignment]


class RefusingKeyring(DictKeyring):
    def set_password(self, service: str, username: str, password: str) -> None:
        raise PasswordSetError("denied")


class ForgetfulKeyring(DictKeyring):
    def set_password(self, service: str, username: str, password: str) -> None:
        """Accepts the write and keeps nothing, as keyring's null backend does."""


class EmptyChainer(chainer.ChainerBackend):
    backends = []  # what keyring's chainer finds on a machine with no keyring


class ChainerOverDict(chainer.ChainerBackend):
    backends = [DictKeyring()]


# Defining a backend class registers it with keyring; keep these out of keyring's own detection.
for _cls in (DictKeyring, PlaintextGradeKeyring, LockedKeyring, RefusingKeyring, ForgetfulKeyring, EmptyChainer):
    KeyringBackend._classes.discard(_cls)
KeyringBackend._classes.discard(ChainerOverDict)


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def entry(kr: DictKeyring, folder: Path) -> str | None:
    return kr.entries.get((KEYRING_SERVICE, str(folder.absolute())))


# ---------------------------------------------------------------------------------------------
# With a keyring


def test_with_a_keyring_the_folder_holds_only_ciphertext(tmp_path):
    kr = DictKeyring()
    store = KeyStore(tmp_path, use_keyring=kr)
    store.set("openai", KEY)
    store.set("groq", OTHER)
    assert store.backend == "keyring"
    assert list(files(tmp_path)) == ["keys.enc"]
    fernet_key = entry(kr, tmp_path)
    assert fernet_key and list(kr.entries) == [(KEYRING_SERVICE, str(tmp_path))]
    blob = store.data_path.read_bytes()
    assert KEY.encode() not in blob and OTHER.encode() not in blob and fernet_key.encode() not in blob
    assert Fernet(fernet_key.encode()).decrypt(blob) == b'{"openai": "sk-proj-TOPSECRETtopsecret0123456789abcd", ' + (
        b'"groq": "gsk_OTHERSECRETothersecret0123456789"}'
    )
    assert stat.S_IMODE(os.stat(store.data_path).st_mode) == 0o600
    assert KeyStore(tmp_path, use_keyring=kr).names() == ["groq", "openai"]
    assert resolve_key("openai", env={}, store=KeyStore(tmp_path, use_keyring=kr)).key == KEY
    # A copy of the folder (a backup, a sync) opens nothing without the keyring's entry.
    assert KeyStore(tmp_path, use_keyring=DictKeyring()).names() == []
    assert KeyStore(tmp_path, use_keyring=False).names() == []


def test_each_folder_has_its_own_keyring_entry(tmp_path):
    kr = DictKeyring()
    KeyStore(tmp_path / "a", use_keyring=kr).set("openai", KEY)
    KeyStore(tmp_path / "b", use_keyring=kr).set("openai", OTHER)
    assert entry(kr, tmp_path / "a") != entry(kr, tmp_path / "b")
    assert KeyStore(tmp_path / "a", use_keyring=kr).get("openai") == KEY
    assert KeyStore(tmp_path / "b", use_keyring=kr).get("openai") == OTHER


def test_forget_removes_the_key_and_keeps_the_others(tmp_path):
    kr = DictKeyring()
    store = KeyStore(tmp_path, use_keyring=kr)
    store.set("openai", KEY)
    store.set("groq", OTHER)
    store.forget("openai")
    store.forget("never-set")
    assert KeyStore(tmp_path, use_keyring=kr).names() == ["groq"]
    assert KeyStore(tmp_path, use_keyring=kr).get("openai") is None


def test_a_chainer_is_used_when_its_first_keyring_is_recommended(tmp_path):
    store = KeyStore(tmp_path, use_keyring=ChainerOverDict())
    store.set("openai", KEY)
    assert store.backend == "keyring"
    assert entry(ChainerOverDict.backends[0], tmp_path)
    assert not store.secret_path.exists()


# ---------------------------------------------------------------------------------------------
# Without one


@pytest.mark.parametrize(
    "backend",
    [fail.Keyring(), null.Keyring(), EmptyChainer(), PlaintextGradeKeyring(), False],
    ids=["fail", "null", "empty-chainer", "plaintext-grade", "off"],
)
def test_without_a_usable_keyring_keys_go_to_the_file_store(tmp_path, backend):
    assert not usable_keyring(backend or None)
    store = KeyStore(tmp_path, use_keyring=backend)
    store.set("openai", KEY)
    assert store.backend == "file"
    assert store.keyring_backend is None
    assert sorted(files(tmp_path)) == ["keys.enc", "keys.secret"]
    for path in (store.data_path, store.secret_path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert KEY.encode() not in path.read_bytes()
    assert KeyStore(tmp_path, use_keyring=False).get("openai") == KEY
    if isinstance(backend, PlaintextGradeKeyring):
        assert backend.entries == {}


@pytest.fixture
def system_keyring_set_to():
    """Set keyring's process-wide backend for one test, then put back what was there."""
    before = keyring.get_keyring()

    def choose(backend: KeyringBackend) -> None:
        keyring.set_keyring(backend)
        system_keyring.cache_clear()

    yield choose
    keyring.set_keyring(before)
    system_keyring.cache_clear()


def test_a_machine_whose_keyring_is_the_fail_backend_gets_the_file_store(tmp_path, system_keyring_set_to):
    system_keyring_set_to(fail.Keyring())  # what keyring finds on a headless server or in a container
    assert system_keyring() is None
    store = KeyStore(tmp_path)
    store.set("openai", KEY)
    assert store.backend == "file" and store.secret_path.exists()


def test_a_machine_with_a_keyring_gets_the_keyring_store(tmp_path, system_keyring_set_to):
    kr = DictKeyring()
    system_keyring_set_to(kr)
    assert system_keyring() is kr
    store = KeyStore(tmp_path)
    store.set("openai", KEY)
    assert store.backend == "keyring" and entry(kr, tmp_path)
    assert not store.secret_path.exists()


# ---------------------------------------------------------------------------------------------
# What the user is told


def test_describe_the_file_store_says_what_it_protects_against_and_what_not(tmp_path):
    text = KeyStore(tmp_path, use_keyring=fail.Keyring()).describe()
    assert "no system keyring" in text
    assert f"{tmp_path / 'keys.secret'}" in text and f"{tmp_path / 'keys.enc'}" in text
    assert "backups or sync" in text and "read by accident" in text
    assert "does not protect them from anyone or anything that can read your user's files" in text


def test_describe_the_keyring_store_names_the_keyring_and_its_limit(tmp_path):
    store = KeyStore(tmp_path, use_keyring=DictKeyring())
    text = store.describe()
    assert store.backend_name in text and f"{tmp_path / 'keys.enc'}" in text
    assert "keys.secret" not in text
    assert "copies of that folder" in text
    assert "does not protect them from programs you run while logged in" in text


def test_describe_shows_paths_under_home_with_a_tilde():
    store = KeyStore(Path.home() / ".handai", use_keyring=False)
    assert "~/.handai/keys.secret" in store.describe()


@pytest.mark.parametrize(
    ("backend", "name"),
    [
        (Windows.WinVaultKeyring(), "Windows Credential Locker"),
        (SecretService.Keyring(), "the desktop keyring (Secret Service)"),
        (kwallet.DBusKeyring(), "KWallet"),
        (DictKeyring(), "the system keyring (test key store DictKeyring)"),
    ],
)
def test_keyrings_are_called_by_the_names_users_know(backend, name):
    assert keyring_name(backend) == name


def test_the_macos_keychain_is_called_by_its_name():
    from keyring.backends import macOS

    assert keyring_name(macOS.Keyring()) == "the macOS Keychain"


# ---------------------------------------------------------------------------------------------
# Moving an existing store over


def old_store(folder: Path) -> bytes:
    """A store written before the keyring: keys.enc beside keys.secret. Returns the secret."""
    old = KeyStore(folder, use_keyring=False)
    old.set("openai", KEY)
    old.set("groq", OTHER)
    return old.secret_path.read_bytes().strip()


def test_an_old_file_store_moves_into_the_keyring_without_losing_a_key(tmp_path):
    secret = old_store(tmp_path)
    kr = DictKeyring()
    store = KeyStore(tmp_path, use_keyring=kr)
    assert store.names() == ["groq", "openai"]  # the first read moves it
    assert entry(kr, tmp_path) == secret.decode()
    assert list(files(tmp_path)) == ["keys.enc"]
    assert store.get("openai") == KEY and store.get("groq") == OTHER
    store.set("anthropic", THIRD)
    assert KeyStore(tmp_path, use_keyring=kr).names() == ["anthropic", "groq", "openai"]
    assert list(files(tmp_path)) == ["keys.enc"]


@pytest.mark.parametrize("kr", [RefusingKeyring(), ForgetfulKeyring()], ids=["refuses", "forgets"])
def test_the_old_file_stays_until_the_keyring_really_holds_its_key(tmp_path, kr):
    secret = old_store(tmp_path)
    before = files(tmp_path)
    store = KeyStore(tmp_path, use_keyring=kr)
    assert store.get("openai") == KEY
    assert files(tmp_path) == before
    store.set("anthropic", THIRD)  # still works, from the file
    assert store.secret_path.read_bytes().strip() == secret
    working = DictKeyring()
    assert KeyStore(tmp_path, use_keyring=working).names() == ["anthropic", "groq", "openai"]
    assert entry(working, tmp_path) == secret.decode() and not store.secret_path.exists()


def test_a_locked_keyring_reads_an_old_store_and_changes_nothing(tmp_path):
    old_store(tmp_path)
    before = files(tmp_path)
    store = KeyStore(tmp_path, use_keyring=LockedKeyring())
    assert store.backend == "keyring"
    assert store.get("openai") == KEY
    with pytest.raises(KeyStoreError, match=r"Could not read .*KeyringLocked.*nothing was changed"):
        store.set("anthropic", THIRD)
    with pytest.raises(KeyStoreError):
        store.forget("openai")
    assert files(tmp_path) == before


def test_a_keyring_that_refuses_the_first_key_remembers_nothing(tmp_path):
    store = KeyStore(tmp_path, use_keyring=RefusingKeyring())
    with pytest.raises(KeyStoreError, match="nothing was remembered"):
        store.set("openai", KEY)
    assert not store.data_path.exists() and not store.secret_path.exists()


def test_keys_remembered_while_the_keyring_was_out_of_reach_join_the_keyring_store(tmp_path):
    """E.g. the app started once over ssh, with no desktop session: the file store takes over,
    and the keyring's ciphertext must not be overwritten."""
    kr = DictKeyring()
    KeyStore(tmp_path, use_keyring=kr).set("openai", KEY)
    first = entry(kr, tmp_path)
    headless = KeyStore(tmp_path, use_keyring=False)
    assert headless.get("openai") is None
    headless.set("groq", OTHER)
    assert sorted(files(tmp_path)) == ["keys.enc", "keys.enc.unreadable-1", "keys.secret"]
    assert headless.names() == ["groq"]
    store = KeyStore(tmp_path, use_keyring=kr)
    assert store.names() == ["groq", "openai"]
    assert entry(kr, tmp_path) == first
    assert list(files(tmp_path)) == ["keys.enc"]
    store.forget("openai")
    assert KeyStore(tmp_path, use_keyring=kr).names() == ["groq"]


def test_ciphertext_no_key_opens_is_set_aside_never_overwritten(tmp_path):
    kr = DictKeyring()
    tmp_path.joinpath("keys.enc").write_bytes(b"gAAAA-written-with-a-key-that-is-gone")
    store = KeyStore(tmp_path, use_keyring=kr)
    assert store.names() == []
    store.set("openai", KEY)
    assert files(tmp_path)["keys.enc.unreadable-1"] == b"gAAAA-written-with-a-key-that-is-gone"
    assert store.get("openai") == KEY


# ---------------------------------------------------------------------------------------------
# No key in clear text, ever

API_KEYS = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=8, max_size=80)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    keys=st.dictionaries(st.sampled_from(["openai", "groq", "anthropic", "custom"]), API_KEYS, min_size=1),
    with_keyring=st.booleans(),
    migrate=st.booleans(),
)
def test_no_key_is_ever_written_in_clear_text(keys, with_keyring, migrate):
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        kr = DictKeyring()
        first = KeyStore(folder, use_keyring=False if migrate else kr if with_keyring else False)
        for name, key in keys.items():
            first.set(name, key)
        store = KeyStore(folder, use_keyring=kr if with_keyring else False)
        assert {name: store.get(name) for name in keys} == keys
        written = [*files(folder).values(), *(v.encode() for v in kr.entries.values())]
        for key in keys.values():
            for blob in written:
                assert key.encode() not in blob
                assert key.encode("utf-16-le") not in blob
        assert ("keys.secret" in files(folder)) is not with_keyring
