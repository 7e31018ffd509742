# Two commands set everything up: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench bench-full bench-writer bench-lake postgres browser test-ui generate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,libs]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/alephant-otel serve

test: $(STAMP) postgres
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
test-ui: $(STAMP) browser
	$(BIN)/python -m pytest tests/test_ui.py tests/test_ui_browser.py $(PYTEST_ARGS)

# Benchmarks print a table of figures (see README, Performance); they assert nothing.
bench: $(STAMP)
	$(BIN)/python bench/run.py

bench-full: $(STAMP)
	$(BIN)/python bench/run.py --full

# The writer alone: new traces in every export, and traces continued across exports.
bench-writer: $(STAMP)
	$(BIN)/python bench/writer.py

# Ingest with 1, 2 and 3 receivers on one DuckLake, and query latency lake vs file (README, Scale out).
bench-lake: $(STAMP) postgres
	$(BIN)/python bench/lake.py

# Regenerate Python constants and docs/attributes.md from semconv/.
generate: $(STAMP)
	$(BIN)/python tools/generate_semconv.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache src/alephant_otel/_wirec.*.so
