#!/usr/bin/env bash
# The main job: install into .venv, then execute every example notebook in
# notebooks/ against a private embedded server and report each cell's result.
# nbval compares each cell's output with the output saved in the notebook,
# after the replacements in notebooks/nbval-sanitize.cfg.
# Extra arguments go to pytest, for example -x or the path of one notebook.
#
#   bash scripts/notebooks.sh --update   re-executes every notebook in place, in
#                                        name order, to save new outputs
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test

# A data directory of its own, so the run neither reads nor changes the data of
# the user's embedded server, and the server it starts is stopped at the end.
work_dir="$(mktemp -d "${TMPDIR:-/tmp}/redis-memory-notebooks.XXXXXX")"
export REDIS_MEMORY_DATA_DIR="$work_dir/data"
unset REDIS_MEMORY_URL REDIS_URL REDIS_MEMORY_NAMESPACE
cleanup() {
  .venv/bin/redis-memory server stop >/dev/null || true
  rm -rf "$work_dir"
}
trap cleanup EXIT

if [ "${1:-}" = "--update" ]; then
  # Name order runs the producer notebook before the consumer that reads its data.
  .venv/bin/jupyter nbconvert --to notebook --execute --inplace \
    --ExecutePreprocessor.record_timing=False notebooks/*.ipynb
  exit 0
fi

# Without a path among the arguments, pytest would collect tests/ instead.
arguments=("$@")
has_path=false
for argument in "${arguments[@]}"; do
  case "$argument" in -*) ;; *) has_path=true ;; esac
done
if [ "$has_path" = false ]; then
  arguments+=(notebooks/)
fi
.venv/bin/pytest --nbval --nbval-sanitize-with notebooks/nbval-sanitize.cfg \
  -p no:cacheprovider -v "${arguments[@]}"
