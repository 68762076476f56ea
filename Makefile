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
