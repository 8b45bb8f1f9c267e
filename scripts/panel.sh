#!/usr/bin/env bash
# The panel of data shapes (configs/tables/panel.py), from nothing to experiments/results/panel/with_peers/table.md:
# builds the real shapes' data that $XCS_DATA_DIR lacks, runs the sweep (every shape x loss, validation
# splits; with the BCE run that explains issue 29's 19.1), the peers on every shape and seed, then the report of all of
# them ($OUT/with_peers/table.md). Finished runs
# are skipped, so a second call only redoes the report. A failing run does not stop the others.
#   bash scripts/panel.sh            env: PY (.venv/bin/python), ARG (panel variant, e.g. smoke), RUNS
#                                         (runs/tables/panel), OUT (experiments/results/panel), JOBS (1)
# The wordnet shapes need `apt-get install -y wordnet-base` (xcs.data.build reads /usr/share/wordnet), linux_seen
# `apt-get install -y linux-source-6.1`.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ARG=${ARG:-}
RUNS=${RUNS:-runs/tables/panel}
OUT=${OUT:-experiments/results/panel}
JOBS=${JOBS:-1}
DATA=${XCS_DATA_DIR:-data}
config="configs/tables/panel.py${ARG:+:$ARG}"
shapes=$("$PY" -c "import sys; sys.path.insert(0, '.'); from configs.tables import panel; \
print(' '.join(panel._variant(sys.argv[1] or None).shapes.split('+')))" "$ARG") || exit 1
status=0
for shape in $shapes; do
  case $shape in
    wn_*|linux_*) [ -f "$DATA/$shape/train.txt" ] || {
            cmd=$("$PY" -c "import sys; sys.path.insert(0, '.'); from configs.tables import panel; \
print(panel.build_command(sys.argv[1]).replace('python', sys.argv[3], 1).replace('data/', sys.argv[2] + '/', 1))" \
              "$shape" "$DATA" "$PY")
            echo "== $cmd"; $cmd >/dev/null || status=1; } ;;
  esac
done
"$PY" launch.py --config="$config" --sweep --jobs="$JOBS" --workdir="$RUNS" || status=1
seeds=$("$PY" -c "import sys; sys.path.insert(0, '.'); from configs.tables import panel; \
print(panel._variant(sys.argv[1] or None).seeds)" "$ARG") || exit 1
for shape in $shapes; do
  for seed in $(seq 0 $((seeds - 1))); do  # the seeds the sweep runs the default with (the held-out split is seeded)
    suffix=$([ "$seed" = 0 ] || echo "_seed$seed")
    "$PY" -m experiments.peers --config="configs/tables/panel.py:shape=$shape,seed=$seed${ARG:+,$ARG}" \
      --jobs="$JOBS" --workdir="$RUNS/peers_$shape$suffix" || status=1
  done
done
"$PY" -m xcs.report "$RUNS" --table="$config" --out="$OUT/with_peers" --no_plots || status=1
exit $status
