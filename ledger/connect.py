"""How the ledger connects: the URL a person types turned into SQLAlchemy's (PostgreSQL through psycopg 3),
the engine's settings per backend, and the URL with its password hidden for anything shown or logged."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

_POSTGRES_PREFIXES = ("postgres://", "postgresql://")  # as hosting services and psql write them
_USER_PASSWORD = re.compile(r"^([\w+.-]+://[^:/@]*:)[^@]*@")
_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&#]*")


def driver_url(url: str) -> str:
    """SQLAlchemy's URL for the one a person typed: `postgres://` and `postgresql://` mean psycopg 3
    (the driver requirements.txt installs); any other SQLAlchemy URL is used as it is."""
    for prefix in _POSTGRES_PREFIXES:
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def masked_url(url: str) -> str:
    """The URL with its password (in the user part or a `password=` parameter) shown as ***: the only
    form of a database URL that may reach a log, an error, a provenance record or the screen. The user
    part is read as SQLAlchemy reads it (a password runs to the first `@`); text that is no URL at
    all is not repeated."""
    if "://" not in url:
        return "(not a database URL)"
    return _QUERY_PASSWORD.sub(r"\1***", _USER_PASSWORD.sub(r"\1***@", url, count=1))


def without_password(text: str, url: str) -> str:
    """`text` (an error message, say) with the URL shown masked and its password nowhere."""
    text = text.replace(driver_url(url), masked_url(url)).replace(url, masked_url(url))
    found = _USER_PASSWORD.match(url)
    password = found and found.group(0)[len(found.group(1)) : -1]
    return text.replace(password, "***") if password and len(password) >= 3 else text


def make_engine(url: str) -> Engine:
    """An engine with the settings its backend needs. SQLite: one file shared by threads, WAL, a long
    busy timeout. PostgreSQL: a pool whose connections are checked before use (a server restart or
    an idle timeout is not an error the user sees) and recycled before typical idle cut-offs."""
    url = driver_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    options: dict[str, Any] = {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10, "pool_recycle": 1800}
    if url.startswith("postgresql"):
        options["connect_args"] = {"connect_timeout": 10, "application_name": "handai"}
    return create_engine(url, **options)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
