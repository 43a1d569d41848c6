# Everything a developer or CI runs. `make setup` is idempotent and quick once done.
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
export UV_LINK_MODE := copy

.PHONY: setup run test lint format bench reliability test-pg test-browser ci

setup:
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --user uv || $(PYTHON) -m pip install --quiet uv
	@$(UV) sync --frozen --quiet

## Start the demo: seeds a demo profile, connectors and a gentle event stream.
run: setup
	SLUICE_ALLOW_PRIVATE_DESTINATIONS=1 $(UV) run sluice serve --demo

## The test suite (fast tier: in-process app, real SQLite, local vendor mocks).
test: setup
	$(UV) run pytest

lint: setup
	$(UV) run ruff format --check src tests bench
	$(UV) run ruff check src tests bench
	$(UV) run mypy

format: setup
	$(UV) run ruff format src tests bench
	$(UV) run ruff check --fix src tests bench

## Tests against a real PostgreSQL (started by scripts/pg.sh unless SLUICE_TEST_PG_URL is set).
test-pg: setup
	bash scripts/with-postgres.sh $(UV) run pytest -m pg -p no:cacheprovider

## Browser tests: Playwright driving Debian's Chromium against a real `sluice serve`.
test-browser: setup
	$(UV) run pytest -m browser

## Real processes, kill -9, vendor faults, soak (SLUICE_RELIABILITY_SCALE=ci for the short run).
reliability: setup
	$(UV) run pytest -m reliability -s

## Benchmarks: print figures and ratios measured in the same run.
bench: setup
	bash scripts/install-bench-tools.sh
	$(UV) run python -m bench

ci:
	bash .ci/run
