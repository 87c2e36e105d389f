# The two commands of the README: `make demo` and `make test`. Both build .venv themselves.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.jupyreg-installed

UI_TESTS := labextension/ui-tests
LABEXT := jupyreg/labextension/package.json
VENV_BIN = $(abspath $(VENV))/bin

.PHONY: demo test ui-test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/jupyreg demo $(if $(DIR),--dir $(DIR))

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -q -ra
	$(MAKE) ui-test

# The lab extension is built by `pip install` (hatch-jupyter-builder); rebuild it when its
# sources change and link the build into the venv, so the browser tests see the current code.
$(LABEXT): labextension/package.json $(wildcard labextension/src/*.ts labextension/style/*) | $(STAMP)
	cd labextension && PATH="$(VENV_BIN):$$PATH" npm install --no-audit --no-fund
	cd labextension && PATH="$(VENV_BIN):$$PATH" npm run build:prod
	$(VENV)/bin/jupyter labextension develop --overwrite .

# Galata (Playwright) in Debian's Chromium: never a Playwright browser download.
ui-test: $(LABEXT)
	@test -x /usr/bin/chromium || apt-get install -y chromium || \
		{ apt-get update && apt-get install -y chromium; }
	cd $(UI_TESTS) && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund
	cd $(UI_TESTS) && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 JUPYREG_PYTHON="$(VENV_BIN)/python" \
		npx playwright test
