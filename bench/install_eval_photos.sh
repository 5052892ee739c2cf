#!/usr/bin/env bash
# Installs the packages whose photos make up the embedded tagger's evaluation set (bench/eval_set.py).
# Photos are read in place from the installed packages; none is committed. Run as root (Debian).
set -euo pipefail
cd "$(dirname "$0")/.."
apt-get install -y --no-install-recommends \
  mate-backgrounds opencv-doc plasma-workspace-wallpapers lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 \
  imagemagick-6-doc
PY=${PYTHON:-.venv/bin/python}
"$PY" -m pip install -r bench/requirements-bench.txt
# Only their photo files are read (never imported), so their dependencies (torch, ...) are not needed.
"$PY" -m pip install --no-deps imgaug==0.4.0 ultralytics==8.4.190
