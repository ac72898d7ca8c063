# The front door. Set-up is two commands: `make slides` and `make test`; each installs what a
# fresh machine lacks (a .venv from pyproject.toml, talk/node_modules from package-lock.json,
# Debian's chromium for tests and PDF export). Nothing is downloaded outside the registries.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DECK ?= talk/slides.md
PROFILE ?= full
DEVICE ?= auto
# one figure per core by default; on the CPU each figure runs with one torch thread (same numbers for any JOBS)
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
# test files run side by side, one pytest-xdist worker per core (files that share talk/ stay whole);
# a worker more was no faster on a fresh clone (987 s against 931 s on 2 cores: training the zoo
# and the figures keep the cores busy)
TEST_JOBS ?= $(JOBS)
ifneq ($(shell [ "$(JOBS)" -ge 1 ] 2>/dev/null && echo yes),yes)
$(error JOBS=$(JOBS): give how many figures or models to make at once, a whole number of 1 or more (e.g. JOBS=2))
endif
ONLY ?=
FORCE ?=
# CLUSTER=tcp://host:8786 (a Dask scheduler) or CLUSTER=slurm (workers as Slurm jobs, CLUSTER_CONFIG)
CLUSTER ?=
CLUSTER_CONFIG ?= cluster.yaml
BASE ?= /
PORT ?= 3030
WPM ?= 130
# One pinned pair for CPU and GPU machines alike: a CUDA 13.0 build that also runs on the CPU.
# macOS or another CUDA: make venv TORCH='torch torchvision' (see README).
TORCH ?= torch==2.14.1 torchvision==0.29.1
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

FIGURE_ARGS := --profile $(PROFILE) --device $(DEVICE) --jobs $(JOBS) $(if $(ONLY),--only '$(ONLY)') $(if $(FORCE),--force) \
  $(if $(CLUSTER),--cluster '$(CLUSTER)' --cluster-config '$(CLUSTER_CONFIG)')

.PHONY: slides figures deck-figures models check pdf dev rehearse test bench reference venv test-venv cluster-venv node chromium clean help gpu-wheels

help:
	@echo "make slides   the stale figures DECK shows + check + static site (DECK=talk/workshop.md for the workshop)"
	@echo "make test     the test suite (installs what is missing)"
	@echo "make figures  every stale figure (ONLY=pattern FORCE=1 DEVICE=cpu|cuda|auto PROFILE=quick|full|gpu JOBS=n; LIST=1: say which and why, make none)"
	@echo "make models   train missing or stale zoo models"
	@echo "              both on a Dask cluster: CLUSTER=tcp://host:8786 or CLUSTER=slurm (cluster.yaml)"
	@echo "make check    citations and assets of DECK;  make pdf;  make dev;  make rehearse;  make bench"

# A figure that fails (exit 1) keeps its previous outputs: the deck is built with them, its stale
# places are listed and make slides fails; any other failure of the figures stops it before the build.
slides: venv $(if $(CLUSTER),cluster-venv) node
	@status=0; $(PY) -m decktools.figures $(DECK) --check-first $(FIGURE_ARGS) || status=$$?; \
	if [ $$status -gt 1 ]; then exit $$status; fi; \
	$(PY) -m decktools.build $(DECK) --base $(BASE) --profile $(PROFILE) $$(if [ $$status = 1 ]; then echo --figures-failed; fi)

# The runner rebuilds, through the zoo, the stale models the stale figures read (a changed
# checkpoint, architecture source, zoo entry or dataset), so `make figures` needs no `make models`
# first and a no-op run never imports torch. `make models` builds every model of the zoo.
figures: venv $(if $(CLUSTER),cluster-venv)
	$(PY) -m figures_src.runner $(FIGURE_ARGS) $(if $(LIST),--list)

# A deck's build makes only the stale figures that DECK (with its imported pages) shows.
deck-figures: venv $(if $(CLUSTER),cluster-venv)
	$(PY) -m decktools.figures $(DECK) $(FIGURE_ARGS) $(if $(LIST),--list)

models: venv $(if $(CLUSTER),cluster-venv)
	$(if $(CLUSTER),$(PY) -m figures_src.runner.zoo_cluster --cluster '$(CLUSTER)' --cluster-config '$(CLUSTER_CONFIG)' --device $(DEVICE),$(PY) -m mechinterp.models.zoo --device $(DEVICE) --jobs $(JOBS))

# The lent GPU machine's python3 (3.12, with torch) has no network and lacks these: carried there
# as wheels in .whl/ (git-ignored) for bench/gpu_session.sh; the versions are this venv's.
GPU_WHEELS := dask==2026.8.0 distributed==2026.8.0 tornado==6.6.1 zict==3.0.0 tblib==3.2.2 locket==1.0.0 \
  partd==1.4.2 cloudpickle==3.1.3 toolz==1.2.0 mlxtend==0.25.0
gpu-wheels:
	$(PYTHON) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	  -d .whl $(GPU_WHEELS)

check: venv
	$(PY) -m decktools.check $(DECK) --profile $(PROFILE)

# As for slides, a figure that fails keeps its previous outputs: the PDF is made with them, then
# make pdf fails; make dev serves the deck with them.
pdf: venv $(if $(CLUSTER),cluster-venv) node chromium
	@status=0; $(PY) -m decktools.figures $(DECK) $(FIGURE_ARGS) || status=$$?; \
	if [ $$status -gt 1 ]; then exit $$status; fi; \
	$(PY) -m decktools.build $(DECK) --pdf --profile $(PROFILE) $$(if [ $$status = 1 ]; then echo --figures-failed; fi)

dev: venv $(if $(CLUSTER),cluster-venv) node
	@status=0; $(PY) -m decktools.figures $(DECK) $(FIGURE_ARGS) || status=$$?; \
	if [ $$status -gt 1 ]; then exit $$status; fi; \
	$(PY) -m decktools.dev $(DECK) --port $(PORT)

rehearse: venv
	$(PY) -m decktools.rehearse $(DECK) --wpm $(WPM)

test: test-venv node chromium
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile $(PYTEST_ARGS)

# TransformerLens, bench_transformers' independent reference (pyproject's `reference` extra): into
# the main venv when a dry run shows it leaves torch, torchvision and numpy as they are, else into a
# venv of its own, REFERENCE_VENV (bench_transformers finds it there)
REFERENCE_VENV ?= .venv-reference
REFERENCE = $(shell $(PY) -c "import tomllib; print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['reference']))")

bench: test-venv reference
	@export REFERENCE_PYTHON=$(abspath $(REFERENCE_VENV))/bin/python; for script in bench/bench_*.py; do echo "== $$script"; $(PY) -m bench.$$(basename $$script .py) || exit 1; done

reference: venv
	@$(PY) -c "import transformer_lens" 2>/dev/null || test -x $(REFERENCE_VENV)/bin/python || \
	if $(PY) -m pip install --dry-run --quiet --report - $(REFERENCE) | $(PY) -m bench.reference_pins; then \
	  $(PY) -m pip install -q $(REFERENCE); \
	else \
	  $(PYTHON) -m venv $(REFERENCE_VENV) && $(REFERENCE_VENV)/bin/pip install -q $(TORCH) safetensors $(REFERENCE); \
	fi

# What `make slides` needs (a torch already there, one the user chose, stays); the test and
# cluster extras come with `make test` and CLUSTER=.
venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch, torchvision" 2>/dev/null || $(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e .
	touch $@

test-venv: $(VENV)/.installed-test
$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed-cluster    # the test extras hold the cluster's

cluster-venv: $(VENV)/.installed-cluster
$(VENV)/.installed-cluster: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[cluster]'
	touch $@

node: talk/node_modules/.installed
talk/node_modules/.installed: talk/package-lock.json
	cd talk && npm ci --no-audit --no-fund
	touch $@

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium is missing: run 'sudo apt-get install chromium' (Debian's package)"; exit 1; fi; }

clean:
	rm -rf talk/dist talk/dist-* talk/*.prepared.md talk/pages/*.prepared.md .figure-staging
