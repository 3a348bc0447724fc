# Sourced by run.sh and test.sh: sets PY to a Python 3.11 or newer, or says what to do and exits.
# shellcheck shell=bash
# Python 3.11 or newer: $PYTHON if set, else the newest python3.x that runs.
NEED="Handai needs Python 3.11 or newer"
PY=""
for candidate in ${PYTHON:+"$PYTHON"} python3.13 python3.12 python3.11 python3; do
  if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
    PY=$candidate
    break
  fi
done
if [ -z "$PY" ]; then
  FOUND=""
  if command -v python3 >/dev/null 2>&1; then
    FOUND=$( (python3 --version || true) 2>&1 | head -n 1)
  fi
  echo "$NEED and found none (python3 here: ${FOUND:-missing}). Install one (Debian/Ubuntu: sudo apt-get install python3.11 python3.11-venv; macOS: brew install python@3.12; or python.org), or set PYTHON=/path/to/python3.11, then run $0 again." >&2
  exit 1
fi
if [ -x .venv/bin/python ] && ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
  echo "$NEED, and .venv was made with $(.venv/bin/python --version 2>&1). Remove it (rm -rf .venv) and run $0 again; it will be rebuilt with $("$PY" --version 2>&1)." >&2
  exit 1
fi
