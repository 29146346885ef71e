# Two commands: `make demo` and `make test`. Both build .venv from nothing but python3 and pip.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint bench gateway clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ibkr-nb demo

test: $(STAMP)
	$(VENV)/bin/ruff check ibkr_nb tests benchmarks
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check ibkr_nb tests benchmarks

bench: $(STAMP)
	-$(PY) -m pip install --quiet -e '.[bench]'
	for script in benchmarks/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

gateway: $(STAMP)
	$(VENV)/bin/ibkr-nb gateway

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
