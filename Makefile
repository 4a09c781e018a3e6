# Two commands do all set-up on a fresh machine: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP_FLAGS := --progress-bar off -c constraints.txt
# pip's own lines, less the hundred "Requirement already satisfied" ones of a warm venv: what is collected and
# installed stays visible. bash with pipefail, so a failing pip still fails the target through the filter.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PIP_SHOW := grep -v -E '^(Requirement already satisfied|Using cached|  )' || true

.PHONY: demo test lint typecheck unit bench system-deps clean fixtures

$(BIN)/python:
	@echo "== venv: creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Runtime only (typer + rich): what `make demo` needs.
$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	@echo "== pip: installing mi (typer + rich) into $(VENV)"
	$(BIN)/pip install $(PIP_FLAGS) -e . | { $(PIP_SHOW); }
	touch $@

# Dev extras: torch 2.13.0 (local CPU wheel, pinned by constraints.txt), transformers, onnx, gguf, linters.
$(VENV)/.dev-installed: $(BIN)/python pyproject.toml constraints.txt
	@echo "== pip: installing mi with the dev extras into $(VENV) (torch, transformers, onnx, linters; about a minute on a fresh venv)"
	$(BIN)/pip install $(PIP_FLAGS) -e '.[dev]' | { $(PIP_SHOW); }
	touch $@ $(VENV)/.installed

# Graphviz's `dot` renders PNG/SVG for `mi graph`; Debian's chromium + chromium-driver are the real browser the
# `mi report` tests drive (selenium, /usr/bin/chromedriver, nothing downloaded). Installed when we are root with
# apt, else the tests that need them skip visibly.
system-deps:
	@echo "== system-deps: graphviz (dot) for the PNG/SVG tests, chromium + chromedriver for the report tests"
	@missing=""; command -v dot >/dev/null 2>&1 || missing="$$missing graphviz"; \
	  [ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	  [ -x /usr/bin/chromedriver ] || missing="$$missing chromium-driver"; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      echo "== apt-get install$$missing"; \
	      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	        || echo "note: could not install$$missing; the tests that need them will be skipped"; \
	    else echo "note:$$missing missing and not root; the tests that need them will be skipped"; fi; \
	  fi

demo: $(VENV)/.installed
	@echo "== demo: mi inspect examples/tiny-gpt2"
	$(BIN)/mi inspect examples/tiny-gpt2

lint: $(VENV)/.dev-installed
	@echo "== lint: ruff check, ruff format --check, lint-imports (the layer contracts)"
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(VENV)/.dev-installed
	@echo "== typecheck: mypy --strict on the package (about half a minute)"
	$(BIN)/mypy

unit: $(VENV)/.dev-installed
	@echo "== unit: the whole pytest suite"
	$(BIN)/pytest -q

test: system-deps $(VENV)/.dev-installed lint typecheck unit

bench: $(VENV)/.dev-installed
	@echo "== bench: every benchmark suite (ratios against the peer tools)"
	$(BIN)/python benchmarks/run.py

fixtures: $(VENV)/.dev-installed
	$(BIN)/python -m fixtures.make_fixtures
	$(BIN)/python -m fixtures.make_torch_fixtures
	$(BIN)/python -m fixtures.make_onnx_gguf_fixtures

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
