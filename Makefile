# Two entry points for a fresh machine; each does its own set-up.
#   make demo   - virtual environment, install, run the demo on the embedded ClickHouse (chDB)
#   make test   - virtual environment, install with test extras, Java + Maven for the test
#                 Kafka broker and Chromium for the page tests when missing, ruff, the
#                 whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint venv clean bench-quick kafka-prereqs browser-prereqs

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "filterwatch needs Python >= 3.11 (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/filterwatch demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The streaming tests start a real Kafka broker (scripts/kafka-local), assembled from
# Maven Central on first use: it needs Java 17 and Maven, installed here when missing.
kafka-prereqs:
	@if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then \
	  echo "installing Java 17 and Maven for the test Kafka broker"; \
	  apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless maven >/dev/null; \
	fi

# The report and status-page tests render pages in headless Chromium (Debian's package).
browser-prereqs:
	@if ! command -v chromium >/dev/null; then \
	  echo "installing Chromium for the page-rendering tests"; \
	  apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	fi

test: $(STAMP) lint kafka-prereqs browser-prereqs
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench-quick: $(STAMP)
	$(BIN)/python bench/scenarios.py --quick

clean:
	rm -rf $(VENV) .filterwatch build *.egg-info
