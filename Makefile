# Two commands do all the set-up: `make demo` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/data/dagster_home
# The browser test drives Debian's chromium (never a downloaded browser).
CHROMIUM ?= /usr/bin/chromium
APT_GET  ?= apt-get

.PHONY: install demo test test-fast chromium ui clean-data

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: $(STAMP)
	$(PY) -c 'from wrmil_assets.run import ensure_dagster_home; ensure_dagster_home()'

## Generate the synthetic handwriting set (if missing), materialise the whole asset graph, then
## segment synthetic pages and score a mixed-writer page (scripts/page_demo.py, ~40 s).
demo: $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/wrmil run --preset demo
	$(PY) scripts/page_demo.py

## Run the whole test suite (what .ci/run calls), browser test and security scan included.
test: chromium $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m 'not slow and not browser'

## Debian's chromium for the browser test: installed when missing and this is root with apt-get;
## otherwise stop at once with the command to run (the test is never skipped).
chromium:
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v "$(APT_GET)" >/dev/null 2>&1; then \
	  echo "make: installing Debian's chromium for the browser test"; \
	  $(APT_GET) update && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y chromium \
	  && test -x "$(CHROMIUM)" || { echo "make: chromium is still not at $(CHROMIUM)" >&2; exit 1; }; \
	else \
	  echo "make test: the browser test needs Debian's chromium at $(CHROMIUM), which is missing. Install it:" >&2; \
	  echo "    sudo apt-get update && sudo apt-get install -y chromium" >&2; \
	  exit 1; \
	fi

## Dagster web UI on http://127.0.0.1:3000 (loopback only) showing the runs made by `make demo`.
ui: $(STAMP)
	$(PY) -c 'from wrmil_assets.run import ensure_dagster_home; ensure_dagster_home()'
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

clean-data:
	rm -rf data/artifacts data/dagster_home
