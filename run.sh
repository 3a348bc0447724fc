#!/usr/bin/env bash
# Set up (first time) and start Handai at http://127.0.0.1:8501. Extra arguments go to streamlit
# (./run.sh --server.port 8600, --server.address 0.0.0.0); later ones win over the defaults here.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/python.sh  # PY: a Python 3.11 or newer, or a clear message and exit 1
if [ ! -x .venv/bin/python ]; then
  echo "Handai: creating .venv with $("$PY" --version 2>&1) (first start)…" >&2
  "$PY" -m venv .venv
fi
if [ ! -f .venv/.installed ] || [ requirements.txt -nt .venv/.installed ]; then
  if [ -f .venv/.installed ]; then
    echo "Handai: requirements.txt changed; updating packages in .venv…" >&2
  else
    echo "Handai: installing packages into .venv (first start, about a minute)…" >&2
  fi
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements.txt
  touch .venv/.installed
fi
# What streamlit will serve: the defaults below, unless the extra arguments change them.
ADDRESS=127.0.0.1
PORT=8501
previous=""
for arg in "$@"; do
  case "$previous" in
    --server.address) ADDRESS=$arg ;;
    --server.port) PORT=$arg ;;
  esac
  case "$arg" in
    --server.address=*) ADDRESS=${arg#*=} ;;
    --server.port=*) PORT=${arg#*=} ;;
  esac
  previous=$arg
done
if [ "$ADDRESS" = "127.0.0.1" ] || [ "$ADDRESS" = "localhost" ]; then
  echo "Handai: serving at http://$ADDRESS:$PORT (only this computer; add --server.address 0.0.0.0 to share on your network, --server.port N for another port)" >&2
else
  echo "Handai: serving at http://$ADDRESS:$PORT (reachable from your network; Ctrl-C stops it)" >&2
fi
exec .venv/bin/streamlit run handai_app.py --server.address 127.0.0.1 --server.port 8501 "$@"
