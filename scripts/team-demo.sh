#!/usr/bin/env bash
# A whole team on one machine, to try it out: a throwaway PostgreSQL (Debian's postgresql), a Dask scheduler
# with two worker processes, and two app servers (http://localhost:8501 and :8502) sharing one library, one
# result cache and the cluster, behind sign-in at a loopback OpenID Connect provider (a viewer, an analyst and an
# admin; --no-sign-in leaves it out). Ctrl-C stops everything and removes the database. For a real team, follow the
# README's "Using PostgreSQL" and "Beyond one machine" sections instead.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh

if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq postgresql >/dev/null
fi
ensure_venv requirements-dev.txt  # the app's requirements and the loopback OpenID Connect provider
PYTHONPATH="$PWD" exec .venv/bin/python scripts/team_demo.py "$@"
