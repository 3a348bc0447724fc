#!/usr/bin/env bash
# Set up (first time) and start Handai at http://127.0.0.1:8501. Extra arguments go to streamlit.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if [ ! -f .venv/.installed ] || [ requirements.txt -nt .venv/.installed ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements.txt
  touch .venv/.installed
fi
exec .venv/bin/streamlit run handai_app.py --server.address 127.0.0.1 --server.port 8501 "$@"
