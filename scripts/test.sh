#!/usr/bin/env bash
# The whole test suite (what CI runs): set-up, lint, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh requirements-dev.txt
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
