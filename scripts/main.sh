#!/usr/bin/env bash
# The main job: install, then run the walkthrough on the embedded server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh notebook
.venv/bin/redis-memory demo
