#!/usr/bin/env bash
# Downloads into .whl/ the pure-Python packages xcs needs that the device tool's GPU image lacks (its Python is
# 3.12 with JAX, flax, optax, orbax, absl-py and pytest already there); scripts/gpu_check.sh installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
.venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation py \
  --platform any -d .whl ml_collections tensorboardX
