# The two commands of the README: `make run` and `make test`. Everything else is for developers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint format db-up db-down clean

$(STAMP): pyproject.toml
	@sh scripts/bootstrap-python.sh "$(PYTHON)" "$(VENV)"
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

run: $(STAMP)
	$(BIN)/citygrid run

test: $(STAMP)
	$(BIN)/citygrid db install
	@sh scripts/install-browser.sh
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check gis layers api webmap tests data
	$(BIN)/ruff format --check gis layers api webmap tests data
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format gis layers api webmap tests data
	$(BIN)/ruff check --fix gis layers api webmap tests data

db-up: $(STAMP)
	$(BIN)/citygrid db up

db-down: $(STAMP)
	$(BIN)/citygrid db down

clean:
	-$(BIN)/citygrid db down
	rm -rf $(VENV) build *.egg-info test-artifacts
