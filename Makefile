# The two commands of the README: `make run` and `make test`. Everything else is for developers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint format bench db-up db-down clean

$(STAMP): pyproject.toml
	@sh scripts/bootstrap-python.sh "$(PYTHON)" "$(VENV)"
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

run: $(STAMP)
	@sh scripts/install-fonts.sh
	$(BIN)/citygrid run

test: $(STAMP)
	$(BIN)/citygrid db install
	@sh scripts/install-browser.sh
	@sh scripts/install-fonts.sh
	@sh scripts/install-clients.sh
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check gis layers api webmap tests data
	$(BIN)/ruff format --check gis layers api webmap tests data
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format gis layers api webmap tests data
	$(BIN)/ruff check --fix gis layers api webmap tests data

bench: $(STAMP)
	@command -v wrk >/dev/null || (DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null)
	@[ -x bench/.venv-tipg/bin/python ] || ($(PYTHON) -m venv bench/.venv-tipg && bench/.venv-tipg/bin/pip install -q tipg==1.6.1 uvicorn==0.54.0)
	@[ -x bench/.venv-pygeoapi/bin/pygeoapi ] || ($(PYTHON) -m venv bench/.venv-pygeoapi && bench/.venv-pygeoapi/bin/pip install -q pygeoapi==0.21.0 starlette==1.10.0 uvicorn==0.54.0 psycopg2-binary==2.9.13 SQLAlchemy==2.1.9 GeoAlchemy2==0.20.0)
	$(BIN)/python bench/features_vs_tipg.py

db-up: $(STAMP)
	$(BIN)/citygrid db up

db-down: $(STAMP)
	$(BIN)/citygrid db down

clean:
	-$(BIN)/citygrid db down
	rm -rf $(VENV) build *.egg-info test-artifacts
