#!/usr/bin/env bash
# The main job: install into .venv, then run every example notebook on a private
# embedded server and report each cell's result (see scripts/notebooks.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/notebooks.sh "$@"
