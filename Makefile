# Two commands do all set-up on a fresh clone:  `make run` (the main job) and `make test` (the test suite).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PLUGINS := $(sort $(wildcard plugins/*/pyproject.toml))
# pytest-xdist processes for `make test` (tests use one torch thread each; 2 fits the 2-core CI machine)
TEST_WORKERS ?= 2

.PHONY: run test bench docs install clean

$(STAMP): pyproject.toml $(PLUGINS)
	@echo "==> [1/3] virtual environment $(VENV)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "==> [2/3] torch 2.13.0 (CPU build; minutes on a fresh machine)"
	$(BIN)/pip install --disable-pip-version-check --progress-bar on torch==2.13.0
	@echo "==> [3/3] harbench and every plugin under plugins/ (editable installs)"
	$(BIN)/pip install --disable-pip-version-check --progress-bar on -e '.[test]' $(foreach p,$(PLUGINS),-e $(dir $(p)))
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/harbench run suites/drift.yaml

test: $(STAMP)
	@echo "==> lint (ruff) and types (mypy: public API and harbench/run)"
	$(BIN)/ruff check .
	$(BIN)/mypy
	@echo "==> documentation site (mkdocs build --strict: a broken link or a page left out of the nav fails)"
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py

clean:
	rm -rf $(VENV) results/harbench.sqlite* results/cache
