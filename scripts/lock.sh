#!/usr/bin/env bash
# Regenerate the lock files (`make lock`): every version pinned, with the hashes of every file
# PyPI has for it, resolved for all platforms from Python 3.11 on (`uv pip compile --universal`).
#
#   requirements/dev.txt    every extra and the dev tools: `make` (.venv) and CI install this
#   requirements/image.txt  the api, worker, sim and otel extras: the Dockerfile installs this
#   requirements/core.txt   the core alone: a system that only enqueues
#   requirements/client.txt the core and the client extra: a system that calls the HTTP API
#
# image.txt, core.txt and client.txt are constrained by dev.txt, so a package has the same version in all
# three. Existing pins are kept unless pyproject.toml needs otherwise; UPGRADE=1 moves every
# pin to the newest version pyproject.toml allows. Usage: scripts/lock.sh [DIR] (default
# requirements; tests/test_packaging.py regenerates into a copy to check they are current).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-requirements}"
uv="${UV:-.venv/bin/uv}"
compile=("$uv" pip compile pyproject.toml --quiet --universal --python-version 3.11
  --generate-hashes --custom-compile-command "make lock")
[ "${UPGRADE:-0}" = "1" ] && compile+=(--upgrade)
mkdir -p "$dir"
"${compile[@]}" --all-extras -o "$dir/dev.txt"
"${compile[@]}" --extra api --extra worker --extra sim --extra otel -c "$dir/dev.txt" -o "$dir/image.txt"
"${compile[@]}" -c "$dir/dev.txt" -o "$dir/core.txt"
"${compile[@]}" --extra client -c "$dir/dev.txt" -o "$dir/client.txt"
