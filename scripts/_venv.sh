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
  # The OCR package asks for OpenCV's GUI build by name; the headless build (in requirements.txt) serves it.
  if .venv/bin/python -m pip show --quiet opencv-python >/dev/null 2>&1; then  # a venv made before the switch
    .venv/bin/python -m pip uninstall --quiet --yes opencv-python opencv-python-headless
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  fi
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-ocr.txt
  local problems
  problems="$(.venv/bin/python -m pip check 2>&1 | grep -v '^No broken requirements' \
    | grep -v '^rapidocr-onnxruntime .* requires opencv-python, which is not installed' || true)"
  if [ -n "$problems" ]; then
    echo "$problems"
    return 1
  fi
}

