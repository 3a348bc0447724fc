"""A throwaway PostgreSQL server for the tests: a cluster of its own (initdb + pg_ctl from Debian's
`postgresql` package) in a temporary folder, on a free 127.0.0.1 port, stopped and removed at the end;
or the server at HANDAI_TEST_POSTGRES_URL. Each test gets a fresh database of its own on it.

The cluster asks for a password over TCP (scram-sha-256), as a team's server would, so the tests'
URLs carry one and the tests can check that it is never shown."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

_PREFIX = "handai-pg-"
PASSWORD = "pg-Secret-4711"  # the throwaway cluster's superuser password; the tests look for it in output


def binaries() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian keeps them versioned), if any."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _reap_stale(bin_dir: Path) -> None:
    """Stop and remove clusters left by test runs that were killed before their clean-up."""
    for folder in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*-*"):
        owner = folder.name[len(_PREFIX) :].split("-")[0]
        if not owner.isdigit() or _alive(int(owner)):
            continue
        as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        stop = [*as_user, str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate", "stop"]
        subprocess.run(stop, capture_output=True, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """One PostgreSQL server for a test session; `new_database()` makes an empty database on it."""

    def __init__(
        self, admin_url: str, folder: Path | None = None, bin_dir: Path | None = None, as_user: Sequence[str] = ()
    ) -> None:
        self.admin_url = admin_url  # a superuser (or CREATEDB) URL: psycopg's plain `postgresql://` form
        self._folder = folder  # the cluster this started (None: a server given by URL)
        self._bin = bin_dir
        self._as_user = list(as_user)
        self._made: list[str] = []

    @classmethod
    def start(cls) -> PostgresServer:
        """initdb + pg_ctl start in a temporary folder. Run as the `postgres` OS user when this is
        root (PostgreSQL refuses to run as root)."""
        bin_dir = binaries()
        if bin_dir is None:
            raise FileNotFoundError("PostgreSQL's initdb/pg_ctl are not installed (apt-get install postgresql)")
        _reap_stale(bin_dir)
        folder = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-"))  # named by its owner
        data, sockets, log = folder / "data", folder / "sockets", folder / "server.log"
        sockets.mkdir()
        pwfile = folder / "pw"
        pwfile.write_text(PASSWORD + "\n")
        as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
            for path in (sockets, pwfile):
                shutil.chown(path, "postgres", "postgres")
            as_user = ["runuser", "-u", "postgres", "--"]
        port = _free_port()

        def run(*args: str) -> None:
            done = subprocess.run([*as_user, *args], capture_output=True, text=True, check=False)
            if done.returncode:
                raise RuntimeError(f"{Path(args[0]).name} failed: {done.stderr or done.stdout}")

        run(
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = (
            f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
            " -c full_page_writes=off -c max_connections=200"
        )
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
        return cls(f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/postgres", folder, bin_dir, as_user)

    @property
    def password(self) -> str | None:
        return make_url(self.admin_url).password

    def _url(self, database: str) -> str:
        """The admin URL on another database, in libpq's form (what psycopg and users write)."""
        url = make_url(self.admin_url).set(drivername="postgresql", database=database)
        return url.render_as_string(hide_password=False)

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(self._url(make_url(self.admin_url).database or "postgres"), autocommit=True)

    def new_database(self) -> str:
        """An empty database of its own; its URL (with the password, as a user would set it)."""
        name = f"handai_test_{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        self._made.append(name)
        return self._url(name)

    def drop_database(self, url: str) -> None:
        name = make_url(url).database
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self._made:
            self._made.remove(name)

    def stop(self) -> None:
        """Stop and remove a cluster this started; on a server given by URL, drop what was made."""
        if self._folder is None:
            for name in list(self._made):
                self.drop_database(self._url(name))
            return
        subprocess.run(
            [*self._as_user, str(self._bin / "pg_ctl"), "-D", str(self._folder / "data"), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self._folder, ignore_errors=True)
