# Two commands set everything up: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench bench-full generate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,libs]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/alephant-otel serve

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Benchmarks print a table of figures (see README, Performance); they assert nothing.
bench: $(STAMP)
	$(BIN)/python bench/run.py

bench-full: $(STAMP)
	$(BIN)/python bench/run.py --full

# Regenerate Python constants and docs/attributes.md from semconv/.
generate: $(STAMP)
	$(BIN)/python tools/generate_semconv.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
