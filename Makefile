# The two commands a newcomer runs: `make run` and `make test` (see README.md).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# uv installs the pinned packages into .venv (in parallel, from its cache): far faster than pip. Like pip,
# it compiles them to bytecode once at install (in parallel), so no command compiles them again on import.
UV_VERSION := 0.13.9
UV_INSTALL := $(BIN)/uv pip install --quiet --python $(BIN)/python
# The demo accounts' passwords, kept (0600, beside the demo store in instance/) when `make run` makes them.
DEMO_ACCOUNTS := instance/demo-accounts.txt
# pytest workers for `make test`: one per CPU (pytest-xdist; `make test WORKERS=1` runs in one process).
WORKERS ?= logical
# Where `make run` serves the app (`make run PORT=5001` when 5000 is taken).
PORT ?= 5000

.PHONY: run test lint lock clean-env

$(BIN)/accessplan: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV_INSTALL) --compile-bytecode -r requirements.lock
	$(UV_INSTALL) --no-deps --editable .
	touch $@

# `serve` loads the demo data into an empty store itself.
run: $(BIN)/accessplan
	@accounts="$$($(BIN)/accessplan users demo)" || exit 1; \
	printf '%s\n' "$$accounts"; \
	case "$$accounts" in "Demo accounts"*) mkdir -p $(dir $(DEMO_ACCOUNTS)); \
	  (umask 077; printf '%s\n' "$$accounts" > $(DEMO_ACCOUNTS));; esac; \
	if [ -f $(DEMO_ACCOUNTS) ]; then echo "Demo accounts (one per role) and their passwords: $(DEMO_ACCOUNTS)"; fi
	$(BIN)/accessplan serve --host 127.0.0.1 --port $(PORT)

# The suite needs a PostgreSQL server (store tests) and Debian's chromium + axe-core (browser tests):
# the two scripts install and start them when missing (apt-get/npm), then pytest runs everything on
# $(WORKERS) workers, each test file on one worker and the browser tests together (tests/conftest.py).
test: $(BIN)/accessplan
	bash -c 'set -e; source .ci/postgres.sh; source .ci/browser.sh; exec $(BIN)/python -m pytest -n $(WORKERS) --dist loadfile'

lint: $(BIN)/accessplan
	$(BIN)/ruff check .

# Re-pin every dependency to the newest release that installs here (then run `make test`).
lock: $(BIN)/accessplan
	$(BIN)/uv pip compile pyproject.toml --extra test --extra bench --python-version 3.11 -o requirements.lock

clean-env:
	rm -rf $(VENV)
