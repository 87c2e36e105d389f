# The two commands of the README: `make demo` and `make test`. Both build .venv themselves.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.jupyreg-installed

.PHONY: demo test

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
