# The two commands a newcomer needs: `make demo` and `make test`. Both create or refresh
# .venv from pyproject.toml first, so nothing needs installing by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: venv demo test lint format bench screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/smsrecon demo

# The dashboard's screenshots in docs/dashboard/, taken by its browser tests (needs chromium
# and chromium-driver).
screenshots: venv
	SMSRECON_SCREENSHOTS=docs/dashboard $(BIN)/pytest tests/dashboard/test_browser.py -q \
		-k "sqlite and test_every_page_loads"

# Two processes (pytest-xdist), one per core: the suite takes about 14 minutes serially on a
# 2-core machine. Each process starts its own throwaway PostgreSQL server.
test: venv
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: venv
	$(BIN)/python bench/append.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis
