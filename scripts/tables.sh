#!/usr/bin/env bash
# Regenerates paper tables: for each NAME given (default: every configs/tables/*.py), its sweep,
# its peers and its report (table.md/.tex/.json + PNGs) in $RESULTS/NAME. Finished runs are
# skipped, so a second call only redoes the reports. A failing run does not stop the others; the
# report is still written from the runs that finished, and the exit status is then 1.
#   bash scripts/tables.sh [NAME ...]      (make tables / make table-NAME)
#   env: PY (.venv/bin/python), JOBS (1), ARG (config variant, e.g. smoke), RUNS (runs/tables),
#        RESULTS (experiments/results)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
JOBS=${JOBS:-1}
ARG=${ARG:-}
RUNS=${RUNS:-runs/tables}
RESULTS=${RESULTS:-experiments/results}
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in configs/tables/*.py; do
    n=$(basename "$f" .py)
    [ "$n" = __init__ ] || names+=("$n")
  done
fi
status=0
for name in "${names[@]}"; do
  config="configs/tables/$name.py${ARG:+:$ARG}"
  echo "== $name: $config -> $RUNS/$name -> $RESULTS/$name"
  "$PY" launch.py --config="$config" --sweep --jobs="$JOBS" --workdir="$RUNS/$name" || status=1
  "$PY" -m experiments.peers --config="$config" --jobs="$JOBS" --workdir="$RUNS/$name" || status=1
  "$PY" -m xcs.report "$RUNS/$name" --table="$config" --out="$RESULTS/$name" || status=1
done
exit $status
