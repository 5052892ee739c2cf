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

# Install Debian packages (as root, else through sudo) unless `check` already succeeds.
# Usage: ensure_debian "check command" package...
ensure_debian() {
  local check="$1"; shift
  if eval "$check" >/dev/null 2>&1; then
    return 0
  fi
  local sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "$@" >/dev/null
}

# OpenCV (pulled in by the offline text reader, rapidocr-onnxruntime) loads libGL and GLib at import.
OPENCV_DEBIAN_PACKAGES="libgl1 libglib2.0-0"
opencv_libs_present() {
  local libs; libs="$("$(command -v ldconfig || echo /sbin/ldconfig)" -p)"
  grep -q 'libGL.so.1' <<<"$libs" && grep -q 'libgthread-2.0.so.0' <<<"$libs"
}
