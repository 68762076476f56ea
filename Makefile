# The two commands a newcomer needs: `make close` and `make test`.
PERIOD ?= 2026-10
VENV := .venv/bin

.PHONY: setup close test lint

setup:
	./scripts/setup

close: setup  ## set up, then run the month-end close on the sample company
	$(VENV)/billing-cycle close --period $(PERIOD)

test: setup  ## set up, then run lint and the whole test suite
	./scripts/test

lint:
	$(VENV)/ruff check .

.PHONY: ui-test
ui-test: setup  ## the browser test alone: local Prefect server + worker, chromium through the close in the UI
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(VENV)/pytest -q tests/ui $(PYTEST_ARGS)
