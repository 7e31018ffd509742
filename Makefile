# Two commands set everything up: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BUILT  := $(VENV)/.built
# setup.py compiles the C reader and some of these modules; build_ext redoes only what changed
SOURCES := $(shell find src -name '*.py' -o -name '*.c') setup.py

.PHONY: run build test bench bench-full bench-writer bench-lake postgres browser test-ui generate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,libs]'
	touch $(STAMP)

# Recompile what changed since the install (the C reader, the compiled modules: setup.py);
# without it, Python imports a compiled module built from the old source.
$(BUILT): $(STAMP) $(SOURCES)
	$(BIN)/python setup.py --quiet build_ext --inplace
	touch $(BUILT)

build: $(BUILT)

run: $(BUILT)
	$(BIN)/alephant-otel serve

test: $(BUILT) postgres
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# PostgreSQL server binaries (Debian's package) for the DuckLake tests and benchmark, which start
# their own server on 127.0.0.1 in a temporary directory. Installed only when missing (as root).
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else echo "PostgreSQL is not installed (as root: apt-get install postgresql): DuckLake tests will be skipped"; fi

# Headless Chromium (Debian's packages) for the web view's browser tests; Playwright drives
# /usr/bin/chromium and downloads nothing. Installed only when missing (as root).
browser:
	@test -x /usr/bin/chromium || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver)

# The web view's tests alone (plain HTTP, then the browser); screenshots in tests/output/ui/.
test-ui: $(BUILT) browser
	$(BIN)/python -m pytest tests/test_ui.py tests/test_ui_browser.py $(PYTEST_ARGS)

# Benchmarks print a table of figures (see README, Performance); they assert nothing.
bench: $(BUILT)
	$(BIN)/python bench/run.py

bench-full: $(BUILT)
	$(BIN)/python bench/run.py --full

# The writer alone: new traces in every export, and traces continued across exports.
bench-writer: $(BUILT)
	$(BIN)/python bench/writer.py

# Ingest with 1, 2 and 3 receivers on one DuckLake, and query latency lake vs file (README, Scale out).
bench-lake: $(BUILT) postgres
	$(BIN)/python bench/lake.py

# Regenerate Python constants and docs/attributes.md from semconv/.
generate: $(STAMP)
	$(BIN)/python tools/generate_semconv.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
	find src -name '*.so' -delete
