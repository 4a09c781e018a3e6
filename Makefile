# Two commands do all set-up on a fresh machine: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP_FLAGS := -q -c constraints.txt

.PHONY: demo test lint typecheck unit bench system-deps clean fixtures

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Runtime only (typer + rich): what `make demo` needs.
$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install $(PIP_FLAGS) -e .
	touch $@

# Dev extras: torch 2.13.0 (local CPU wheel, pinned by constraints.txt), transformers, onnx, gguf, linters.
$(VENV)/.dev-installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install $(PIP_FLAGS) -e '.[dev]'
	touch $@ $(VENV)/.installed

# Graphviz's `dot` renders PNG/SVG for `mi graph`; installed when we are root with apt, else tests skip visibly.
system-deps:
	@command -v dot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null) \
	      || echo "note: could not install graphviz; PNG/SVG tests will be skipped"; \
	  else echo "note: graphviz (dot) missing and not root; PNG/SVG tests will be skipped"; fi; }

demo: $(VENV)/.installed
	$(BIN)/mi inspect examples/tiny-gpt2

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

unit: $(VENV)/.dev-installed
	$(BIN)/pytest -q

test: system-deps $(VENV)/.dev-installed lint typecheck unit

bench: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/run.py

fixtures: $(VENV)/.dev-installed
	$(BIN)/python -m fixtures.make_fixtures
	$(BIN)/python -m fixtures.make_torch_fixtures
	$(BIN)/python -m fixtures.make_onnx_gguf_fixtures

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
