# Paper tables (experiments/README.md): `make tables` regenerates every table under
# experiments/results/; `make table-NAME` one of them. Variables: JOBS=N runs at a time,
# ARG=variant (e.g. ARG=smoke RUNS=/tmp/r RESULTS=/tmp/t for a quick check), PY, RUNS, RESULTS.
PY ?= .venv/bin/python
JOBS ?= 1
ARG ?=
RUNS ?= runs/tables
RESULTS ?= experiments/results
export PY JOBS ARG RUNS RESULTS

.PHONY: tables test

tables:
	bash scripts/tables.sh

table-%:
	bash scripts/tables.sh $*

test:
	bash scripts/test.sh
