# Two commands do all the set-up: `make demo` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/data/dagster_home

.PHONY: install demo test test-fast ui clean-data

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: $(STAMP)
	$(PY) -c 'from wrmil_assets.run import ensure_dagster_home; ensure_dagster_home()'

## Generate the synthetic handwriting set (if missing) and materialise the whole asset graph.
demo: $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/wrmil run --preset demo

## Run the whole test suite (what .ci/run calls).
test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m 'not slow and not browser'

## Dagster web UI on http://127.0.0.1:3000 showing the runs made by `make demo`.
ui: $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

clean-data:
	rm -rf data/artifacts data/dagster_home
