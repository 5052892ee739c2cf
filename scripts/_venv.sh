# Sourced by run-app.sh and test.sh: create .venv with Python 3.11 and install a requirements file.
# Usage: ensure_venv requirements.txt
ensure_venv() {
  local py="${PYTHON:-}"
  if [ -z "$py" ]; then
    py="$(command -v python3.11 || command -v python3)"
  fi
  if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv
  fi
  # Quiet, but failures still print. The pins live in the requirements files.
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$1" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
  .venv/bin/python -m pip check >/dev/null || { .venv/bin/python -m pip check; return 1; }
}
