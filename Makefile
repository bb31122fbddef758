# HealthMesh: `make run` starts the product, `make test` runs every test. `make help` lists all.
.DEFAULT_GOAL := help
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := python3 -m uv
endif

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

.PHONY: uv
uv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --quiet uv

.PHONY: install
install: uv ## Install every package into .venv from uv.lock
	@$(UV) sync --frozen --quiet

.PHONY: run
run: install ## Start the whole product (embedded PostgreSQL + Tansu unless configured)
	@$(UV) run --frozen --no-sync python -m healthmesh.devstack.run

.PHONY: test
test: install lint typecheck asyncapi-check ## Lint, type-check, then every test (unit, integration, e2e)
	@$(UV) run --frozen --no-sync pytest

.PHONY: test-unit
test-unit: install ## Only the tests that need no database or broker
	@$(UV) run --frozen --no-sync pytest -m "not integration and not e2e"

.PHONY: lint
lint: install ## ruff: lint and formatting
	@$(UV) run --frozen --no-sync ruff check .
	@$(UV) run --frozen --no-sync ruff format --check .

.PHONY: typecheck
typecheck: install ## mypy --strict over every package and its tests
	@$(UV) run --frozen --no-sync mypy libs/common/src libs/devstack/src services/*/src tools/simulator/src benchmarks
	@$(UV) run --frozen --no-sync mypy libs/*/tests services/*/tests tools/*/tests tests

.PHONY: bench
bench: install ## Benchmarks: normalizer write path vs COPY; Apple Health import; query load; backfills (benchmarks/README.md)
	@$(UV) run --frozen --no-sync python benchmarks/normalizer_write.py --rows 1000000 --processes 2 \
		|| echo "normalizer_write: below the goal (see above)"
	@$(UV) run --frozen --no-sync python benchmarks/apple_import.py --records 500000 \
		|| echo "apple_import: below the goal (see above)"
	@$(UV) run --frozen --no-sync python benchmarks/query_load.py --reuse .data/bench/query-load \
		|| echo "query_load: below the goal (see above)"
	@for group in whoop,withings,strava oura fitbit; do \
		$(UV) run --frozen --no-sync python benchmarks/sync_backfill.py --providers $$group \
			$(BENCH_ARGS) || exit 1; \
	done

.PHONY: asyncapi
asyncapi: install ## Regenerate docs/asyncapi.json from the code
	@$(UV) run --frozen --no-sync python -m healthmesh.devstack.asyncapi > docs/asyncapi.json

.PHONY: asyncapi-check
asyncapi-check: install ## Fail when docs/asyncapi.json drifts from the code
	@$(UV) run --frozen --no-sync python -m healthmesh.devstack.asyncapi | diff -u docs/asyncapi.json - \
		|| (echo "docs/asyncapi.json is stale: run 'make asyncapi'" && exit 1)

.PHONY: format
format: install ## Apply ruff's fixes and formatting
	@$(UV) run --frozen --no-sync ruff check --fix .
	@$(UV) run --frozen --no-sync ruff format .

.PHONY: clean-data
clean-data: ## Delete the embedded PostgreSQL data, logs and uploads (.data/)
	rm -rf .data
