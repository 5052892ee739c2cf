#!/usr/bin/env bash
# Install what the app needs into .venv and run it. With no Imagga key configured it tags with
# the embedded offline tagger: no key, no network. Extra arguments go to `streamlit run`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
# The offline text reader's OpenCV needs libGL and GLib; without root or sudo the app still runs and says
# on the page that text reading is unavailable.
ensure_debian opencv_libs_present $OPENCV_DEBIAN_PACKAGES \
  || echo "warning: could not install $OPENCV_DEBIAN_PACKAGES (needs root or sudo): the offline text reader is off" >&2
ensure_venv requirements.txt
exec .venv/bin/streamlit run dashboard.py "$@"
