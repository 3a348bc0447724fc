#!/usr/bin/env bash
# Set up (first time) and run the whole test suite: unit, engine, AppTest and real-browser tests.
# Installs the Python packages into .venv and Debian's chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/python.sh  # PY: a Python 3.11 or newer, or a clear message and exit 1
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if [ ! -f .venv/.installed-dev ] || [ requirements.txt -nt .venv/.installed-dev ] || [ requirements-dev.txt -nt .venv/.installed-dev ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements-dev.txt
  touch .venv/.installed-dev
fi
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
# PostgreSQL's server binaries: the ledger tests start a throwaway cluster of their own (tests/postgres_server.py).
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
fi
# The tests never touch this machine's real keyring (macOS Keychain, …): the key store's keyring
# tests bring their own, and everything else gets the file store, the same on every machine.
export PYTHON_KEYRING_BACKEND=keyring.backends.fail.Keyring
exec .venv/bin/python -m pytest "$@"
