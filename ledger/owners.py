"""Which process owns a running run, and whether that owner is still alive."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

from ledger.models import utcnow

HEARTBEAT_STALE = timedelta(seconds=30)

_BOOT_ID = uuid.uuid4().hex[:8]


def owner_id() -> str:
    """Which process owns a running run: host, pid and a per-process boot id, since a restarted
    container is PID 1 on the same host name again."""
    return f"{socket.gethostname()}:{os.getpid()}:{_BOOT_ID}"


def owner_alive(owner: str | None, heartbeat_at: datetime | None) -> bool:
    """Judged on read: a process on this host whose pid is gone is dead at once; any other owner
    is alive while its heartbeat is fresh."""
    if not owner or heartbeat_at is None:
        return False
    host, pid, _boot = ([*owner.split(":"), "", ""])[:3]
    if host == socket.gethostname() and pid.isdigit() and int(pid) != os.getpid():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except OSError:
            pass  # exists, owned by another user
    return heartbeat_at > utcnow() - HEARTBEAT_STALE


def describe_owner(owner: str | None) -> str:
    host, pid, _boot = ([*(owner or "").split(":"), "", ""])[:3]
    return f"process {pid} on {host}" if pid else "another process"
