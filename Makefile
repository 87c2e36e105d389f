# The two commands of the README: `make demo` and `make test`. Both build .venv themselves.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.jupyreg-installed

# The oldest MLflow jupyreg supports: tests/contract runs against it in its own virtualenv.
OLDEST_MLFLOW ?= 3.17.0
OLDEST_VENV ?= .venv-oldest
OLDEST_STAMP := $(OLDEST_VENV)/.jupyreg-installed-mlflow-$(OLDEST_MLFLOW)

UI_TESTS := labextension/ui-tests
LABEXT := jupyreg/labextension/package.json
VENV_BIN = $(abspath $(VENV))/bin

# Stage 1 runs what tests/conftest.py does not mark slow, server or e2e; stage 2 the rest.
# Each stage runs its modules on pytest-xdist workers, longest first (tests/conftest.py):
# stage 1 on one per core; stage 2 on more, since its tests mostly wait (on servers,
# kernels, locks). pytest's exit 5 (no test collected) fails a stage like any other failure.
FAST_WORKERS ?= 2
E2E_WORKERS ?= 4
PYTEST = $(VENV)/bin/python -m pytest -q -ra -p no:cacheprovider --durations=15 --dist loadgroup \
	--no-loadscope-reorder
FAST = not slow and not server and not e2e
E2E = slow or server or e2e
# `$(call timed,NAME,COMMAND)`: runs COMMAND, then prints NAME's wall time and fails as it did
timed = @t0=$$(date +%s); $(2); rc=$$?; \
	echo "make: $(1) took $$(( $$(date +%s) - t0 )) s (exit $$rc)"; exit $$rc

.PHONY: demo test lint test-fast test-e2e test-oldest contract-oldest ui-test

# --no-compile: Python compiles what is imported, when it is first imported; byte-compiling
# all ~300 packages up front is minutes of CPU on a 2-core machine, most of it never imported.
PIP_INSTALL = -m pip install --quiet --no-compile
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python $(PIP_INSTALL) -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/jupyreg demo $(if $(DIR),--dir $(DIR))

# Two phases, stopping at the first that fails; in each, two jobs share the machine
# (their output is printed whole as each ends): stage 1 while the oldest MLflow's
# virtualenv is built and the contract tests run on it; then stage 2 beside the Galata UI
# tests. One stage alone: `make test-fast`, `test-oldest`, `test-e2e`, `ui-test`.
PHASE = $(MAKE) --no-print-directory -j2 --output-sync=target
test: $(STAMP)
	@$(PHASE) test-fast test-oldest
	@$(PHASE) test-e2e ui-test

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Stage 1: ruff, then the unit and integration tests (minutes); the tests run even when
# ruff complains, and the stage fails if either did.
test-fast: $(STAMP)
	$(call timed,stage 1 (ruff + fast tests),\
	$(VENV)/bin/ruff check .; lint=$$?; $(PYTEST) -n $(FAST_WORKERS) -m "$(FAST)"; tests=$$?; \
	[ $$lint = 0 ] && [ $$tests = 0 ])

# Stage 2: the end-to-end suites: real `mlflow server` and `jupyreg server` processes,
# PostgreSQL, notebooks in kernels, binder, the benchmarks' smoke run, concurrency, faults;
# then, alone on the machine, the tests marked `serial` (they judge latency or throughput).
test-e2e: $(STAMP)
	$(call timed,stage 2 (end-to-end tests),$(PYTEST) -n $(E2E_WORKERS) -m "($(E2E)) and not serial" \
		&& $(PYTEST) -m "serial")

# The contract tests on the oldest supported MLflow, in a second virtualenv (pip reuses
# its cache). Skipped only while tests/contract/ does not exist.
test-oldest:
	@if [ -d tests/contract ]; then \
		$(MAKE) --no-print-directory $(OLDEST_STAMP) && $(MAKE) --no-print-directory contract-oldest; \
	else \
		echo "make: test-oldest: tests/contract/ does not exist: nothing to run"; \
	fi

contract-oldest:
	$(call timed,contract tests on MLflow $(OLDEST_MLFLOW),\
		$(OLDEST_VENV)/bin/python -m pytest -q -ra -p no:cacheprovider tests/contract)

$(OLDEST_STAMP): pyproject.toml
	rm -rf $(OLDEST_VENV)
	$(PYTHON) -m venv $(OLDEST_VENV)
	echo '*' > $(OLDEST_VENV)/.gitignore
	$(OLDEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(OLDEST_VENV)/bin/python $(PIP_INSTALL) -e ".[test]" "mlflow[auth]==$(OLDEST_MLFLOW)"
	$(OLDEST_VENV)/bin/python -c "import mlflow, sys; \
		sys.exit(mlflow.__version__ != '$(OLDEST_MLFLOW)' and 'got MLflow ' + mlflow.__version__)"
	touch $@

# The lab extension is built by `pip install` (hatch-jupyter-builder); rebuild it when its
# sources change and link the build into the venv, so the browser tests see the current code.
$(LABEXT): labextension/package.json $(wildcard labextension/src/*.ts labextension/style/* \
		labextension/schema/*.json) | $(STAMP)
	cd labextension && PATH="$(VENV_BIN):$$PATH" npm install --no-audit --no-fund
	cd labextension && PATH="$(VENV_BIN):$$PATH" npm run build:prod
	PATH="$(VENV_BIN):$$PATH" $(VENV)/bin/jupyter labextension develop --overwrite .

# Galata (Playwright) in Debian's Chromium: never a Playwright browser download.
ui-test: $(LABEXT)
	@test -x /usr/bin/chromium || apt-get install -y chromium || \
		{ apt-get update && apt-get install -y chromium; }
	$(call timed,lab extension prettier + eslint + jest,\
		cd labextension && npm run --silent lint:check && npm run --silent test)
	cd $(UI_TESTS) && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund
	$(call timed,Galata UI tests (screenshots in $(UI_TESTS)/screenshots),cd $(UI_TESTS) && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
		JUPYREG_PYTHON="$(VENV_BIN)/python" npx playwright test)
