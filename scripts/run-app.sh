#!/usr/bin/env bash
# Install what the app needs into .venv and run it. With no Imagga key configured it tags with
# the embedded offline tagger: no key, no network. Extra arguments go to `streamlit run`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
ensure_venv requirements.txt
exec .venv/bin/streamlit run dashboard.py "$@"
