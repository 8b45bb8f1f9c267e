#!/usr/bin/env bash
# The GPU check (issue 29): on a machine with a CUDA GPU and JAX installed (e.g. the device tool's image), in at
# most 8 minutes (the steps' limits): the numerical test files on the GPU backend, the bfloat16 head product and
# heads benchmarks, and the panel's smallest set (syn_dominant, built in) trained and evaluated; everything lands
# as JSON/XML in $OUT.
#
#   bash scripts/gpu_wheels.sh                       # here, once: the pure-Python wheels that image lacks -> .whl/
#   OUT=/tmp/gpu bash scripts/gpu_check.sh           # there (the device tool: carry .whl, OUT is set for you)
#
# Each step has its own time limit and a failing step does not stop the next; the exit status is 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu_check}
PY=${PY:-python3}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" > /dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/xcs_site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/xcs_site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} XCS_HUGE_PAGES=0 PYTHONUNBUFFERED=1
export JAX_PLATFORMS=${JAX_PLATFORMS:-cuda}
status=0
step() {  # step NAME SECONDS COMMAND...: runs COMMAND with a limit, records its status and wall time
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "{\"step\": \"$name\", \"rc\": $rc, \"seconds\": $((SECONDS - t0))}" >> "$OUT/steps.jsonl"
  echo "$name: rc=$rc, $((SECONDS - t0)) s"
  [ $rc -eq 0 ] || status=1
}
$PY -c "import jax, json; print(json.dumps({'jax': jax.__version__, 'devices': [str(d) for d in jax.devices()]}))" \
  | tee "$OUT/devices.json"
step tests 190 $PY -m pytest -q -p no:cacheprovider --junitxml="$OUT/tests.xml" \
  tests/test_losses.py tests/test_matmul.py tests/test_topk.py tests/test_bias.py tests/test_sparsity.py tests/test_lsh.py \
  tests/test_factored.py tests/test_conditional.py tests/test_kronecker.py tests/test_validate.py tests/test_train.py \
  tests/test_sparse_table.py
step head_matmul 40 $PY -m experiments.benchmarks.head_matmul --shapes=1024x256x20472,1024x256x131072 \
  --out="$OUT/head_matmul.json"
step heads 100 $PY -m experiments.benchmarks.heads --heads=dense,sparse,lsh --labels=100000,670000 --out="$OUT/heads.json"
step panel 150 $PY launch.py --config=tables/panel:shape=syn_dominant --workdir="$OUT/panel_syn_dominant"
cp "$OUT/panel_syn_dominant/results.json" "$OUT/panel_syn_dominant.json" 2>/dev/null
exit $status
