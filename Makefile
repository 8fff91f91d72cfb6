# Two commands do everything (see README): `make demo` and `make test`.
# Both create .venv with the python3 found on PATH (3.11 or newer) and install into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO := demo-output

.PHONY: demo test lint install clean docs

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "trackly-migrate needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed-dev

# The main job: import the samples into a fresh local sandbox that the tool starts itself.
demo: install
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	cd $(DEMO) && ../$(BIN)/trackly-migrate import-sends ../samples/sends.csv --sandbox --sandbox-db sandbox.db --restart; \
	  status=$$?; [ $$status -le 1 ] || exit $$status
	cd $(DEMO) && ../$(BIN)/trackly-migrate import-clicks ../samples/clicks.jsonl --sandbox --sandbox-db sandbox.db --restart; \
	  status=$$?; [ $$status -le 1 ] || exit $$status
	@echo "Done. Error reports for the rejected sample rows are in $(DEMO)/."

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cog --check README.md

# The whole test suite: lint, format, types, README reference in sync, then every test.
test: lint
	$(BIN)/python -m pytest

# Regenerate README.md's sandbox section and command reference (from docs/ and --help).
docs: install
	$(BIN)/cog -r README.md

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .mypy_cache .ruff_cache
