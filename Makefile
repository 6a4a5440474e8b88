# The two commands a newcomer runs: `make run` and `make test` (see README.md).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint lock clean-env

$(BIN)/accessplan: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

run: $(BIN)/accessplan
	$(BIN)/accessplan load-demo --if-empty
	$(BIN)/accessplan users demo
	$(BIN)/accessplan serve --host 127.0.0.1 --port 5000

# The suite needs a PostgreSQL server (store tests) and Debian's chromium + axe-core (browser tests):
# the two scripts install and start them when missing (apt-get/npm), then pytest runs everything.
test: $(BIN)/accessplan
	bash -c 'set -e; source .ci/postgres.sh; source .ci/browser.sh; exec $(BIN)/python -m pytest'

lint: $(BIN)/accessplan
	$(BIN)/ruff check .

# Re-pin every dependency to the newest release that installs here (then run `make test`).
lock:
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra test --extra bench --python-version 3.11 -o requirements.lock

clean-env:
	rm -rf $(VENV)
