# The README's two commands: `make run` (the whole enclave on embedded defaults) and
# `make test` (ruff and every test, on SQLite and PostgreSQL). Both install what they need.

PYTHON ?= /usr/bin/python3
VENV := .venv
BIN := $(VENV)/bin
export ENCLAVE_HOME ?= $(CURDIR)/var

.PHONY: run test check venv node clean-var

$(BIN)/.installed: pyproject.toml
	./deploy/bootstrap.sh $(if $(filter test check,$(MAKECMDGOALS)),--test,)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# ACRO (the reference checker we compare against) pins pandas<=2.3.3, so it lives in a venv of
# its own and the differential tests call it through ACRO_PYTHON.
.venv-acro/.installed:
	test -x .venv-acro/bin/python || $(PYTHON) -m venv .venv-acro
	.venv-acro/bin/python -m pip install --quiet acro==1.0.2
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

venv: $(BIN)/.installed
node: node_modules/.installed

## run: start the enclave on embedded defaults (SQLite, demo keys, synthetic data, demo accounts)
run: venv node
	$(BIN)/enclave up

## test: lint, type-check every package, run the whole test suite (SQLite and a throwaway PostgreSQL cluster)
test: venv node .venv-acro/.installed
	./deploy/bootstrap.sh --test
	$(BIN)/ruff check .
	$(BIN)/mypy anonymization output_control enclave access_requests
	ACRO_PYTHON=$(CURDIR)/.venv-acro/bin/python $(BIN)/python -m pytest

## check: lint and type-check every package
check: venv
	$(BIN)/ruff check .
	$(BIN)/mypy anonymization output_control enclave access_requests

clean-var:
	rm -rf "$(ENCLAVE_HOME)"
