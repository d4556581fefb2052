# One-command set-up: every target creates the virtualenv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# first-party plugin packages: installed beside collectrules, tested with it
SMS_GATEWAY := plugins/collectrules-sms-gateway
# portfolio sizes (accounts) the benchmarks run at: `make bench SIZES=1000000` for a million
SIZES ?= 10000 100000

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml $(SMS_GATEWAY)/pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet -e $(SMS_GATEWAY)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/collectrules validate policies/
	$(BIN)/collectrules evaluate policies/consumer-lending.yaml \
		--accounts policies/data/accounts.csv --history policies/data/history.csv \
		--holds policies/data/holds.csv --promises policies/data/promises.csv \
		--as-of 2026-11-23T15:00:00+00:00 -o build/decisions.jsonl
	$(BIN)/collectrules report policies/consumer-lending.yaml --outcomes policies/data/outcomes \
		--period 2026-Q3 --format html -o build/kpi-report.html

test: $(STAMP)
	$(BIN)/python -m pytest -q tests $(SMS_GATEWAY)/tests

bench: $(STAMP)
	$(BIN)/python bench/run.py --sizes $(SIZES)

lint: $(STAMP)
	$(BIN)/ruff check src tests

clean:
	rm -rf $(VENV) build .pytest_cache
