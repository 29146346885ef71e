# Two commands: `make demo` and `make test`. Both build .venv from nothing but python3 and pip.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# IBKR's current official client (ibapi-stable 10.x) shares the import name ``ibapi`` with the
# 9.81 release in the dev extra, so it lives in its own directory, used by a subprocess test.
IBAPI10 := .ibapi10/.installed-stamp

.PHONY: demo test lint bench gateway clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(IBAPI10): $(STAMP)
	rm -rf .ibapi10
	$(PY) -m pip install --quiet --target .ibapi10 'ibapi-stable>=10,<11'
	touch $(IBAPI10)

# Every notebook headless on a paper gateway; executed notebooks and HTML in reports/.
demo: $(STAMP)
	$(VENV)/bin/ibkr-nb run

# Debian's chromium for the browser test (driven by Playwright; no browser download).
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)

# The suite (with the browser test), then every notebook against a fixed-seed paper gateway
# (nbval, outputs compared strictly).
test: $(STAMP) $(IBAPI10) browser
	$(VENV)/bin/ruff check ibkr_nb tests benchmarks
	$(PY) -m pytest
	$(PY) -m pytest --nbval notebooks -p no:cacheprovider

lint: $(STAMP)
	$(VENV)/bin/ruff check ibkr_nb tests benchmarks

bench: $(STAMP)
	-$(PY) -m pip install --quiet -e '.[bench]'
	for script in benchmarks/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

gateway: $(STAMP)
	$(VENV)/bin/ibkr-nb gateway

clean:
	rm -rf $(VENV) .ibapi10 .pytest_cache .ruff_cache build *.egg-info
