#!/usr/bin/env bash
# Install everything the tests need and run the whole suite (lint, unit, AppTest, HTTP, browser).
# Extra arguments go to pytest. Needs no network beyond the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh

# Debian's Chromium drives the browser tests (Playwright never downloads a browser here),
# WordNet's plain-text data lets a test rebuild the committed hypernym table, and Debian's
# PostgreSQL server runs the store's tests on a throwaway cluster (tests/pgcluster.py).
if [ ! -x /usr/bin/chromium ] || [ ! -f /usr/share/wordnet/data.noun ] \
   || ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq \
    chromium wordnet-base postgresql >/dev/null
fi

ensure_venv requirements-dev.txt
.venv/bin/ruff check .
# Two worker processes (pytest-xdist): one runs the browser tests, the other the rest, each test file whole
# and in order (the work units are made in tests/conftest.py). TEST_WORKERS=0 runs all in this process (pdb).
exec .venv/bin/python -m pytest -n "${TEST_WORKERS:-2}" --dist loadgroup "$@"
