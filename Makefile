# Two commands on a fresh machine: `make serve` (the OGC API on the embedded sample
# GeoPackage) and `make test` (the whole suite, against GeoPackage and PostGIS).
VENV := .venv
PY := $(VENV)/bin/python
PYENV_VERSION ?= 3.12.1
export PYENV_VERSION

.PHONY: serve test install system lint check bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	python3 -m venv $(VENV) || python3.12 -m venv $(VENV)
	$(PY) -c 'import sys; assert sys.version_info >= (3, 12), "pygeoapi 0.24 needs Python >= 3.12"'
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

# tianya serve generates the default GeoPackage (geodata/tianya.gpkg) when it is missing, as
# on a fresh clone; another --data path must exist (or be given with --generate)
serve: install
	$(VENV)/bin/tianya serve --host 0.0.0.0

system:
	bash .ci/system.sh

# The suite on $(TEST_PROCESSES) processes (pytest-xdist), each test module whole on one of them
# (its module-scoped servers start once); tests marked `exclusive` run alone (tests/parallel.py).
TEST_PROCESSES ?= 2

test: install system check
	eval "$$(bash .ci/postgis.sh)" && CI=$${CI:-1} $(PY) -m pytest -n $(TEST_PROCESSES) --dist loadfile

lint: install
	$(VENV)/bin/ruff check .

# The house's shape, fast, before the suite (tests/test_house.py and test_types.py check
# the same inside it): lint, format, import contracts, types.
check: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy

bench: install
	$(PY) bench/bench_provider.py
	$(PY) bench/bench_hotspots.py

clean:
	rm -rf $(VENV) geodata/tianya.gpkg geodata/tianya.gpkg-* .pytest_cache
