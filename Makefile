# Two entry points, both working from nothing but Python 3.11: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --quiet --constraint constraints.txt

.PHONY: demo test lint schema bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e '.[all]'
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/archspec validate archspec/zoo/*.yaml
	$(BIN)/archspec analyze zoo:resnet18 --depth 1

# Python's bytecode cache, which this machine's environment turns off: without it every test
# worker rewrites every test module's asserts, and every archspec the tests start compiles the
# package again (a fifth of the suite's time)
test: export PYTHONDONTWRITEBYTECODE =
test: $(VENV)/.installed-dev
	$(BIN)/ruff check archspec archspec_launcher.py tests benchmarks docs
	$(BIN)/ruff format --check archspec archspec_launcher.py tests benchmarks docs
	$(BIN)/mypy
	$(BIN)/pytest

schema: $(VENV)/.installed
	$(BIN)/archspec schema -o schemas/archspec.schema.json

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/analyze_speed.py
	$(BIN)/python benchmarks/scaling.py
	$(BIN)/python benchmarks/forward_speed.py
	$(BIN)/python benchmarks/training_speed.py
	$(BIN)/python benchmarks/export_speed.py

clean:
	rm -rf $(VENV)
