# The two commands of the README: `make demo` and `make test`.
# Both install everything they need into .venv first (pinned by requirements.lock).
#
# .venv is made by the interpreter's own `venv` module and every tool goes inside it:
# nothing is installed into the system's Python (on Debian it is "externally managed",
# PEP 668). On Debian that module is the package python3-venv.

VENV   ?= .venv
# The lock is compiled for Python 3.11: prefer an interpreter of that name.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
# uv is also pinned in requirements.lock (dev extra), so `uv pip sync` keeps it.
UV_PIN := uv==0.13.9
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint lock system-deps clean

install: $(STAMP)

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { \
	    echo "make: $(PYTHON) is not Python 3.11; run make PYTHON=/path/to/python3.11" >&2; exit 1; }
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { \
	    echo "make: $(PYTHON) cannot create a venv; on Debian: apt-get install python3-venv" >&2; \
	    exit 1; }
	$(PYTHON) -m venv $(VENV)

$(UV): | $(PY)
	@# a .venv made earlier by uv itself has no pip
	$(PY) -m pip --version >/dev/null 2>&1 || $(PY) -m ensurepip --upgrade >/dev/null
	$(PY) -m pip install --quiet --disable-pip-version-check "$(UV_PIN)"

$(STAMP): requirements.lock pyproject.toml | $(UV)
	@# bytecode compiled once here: every Airflow task process imports the whole stack
	$(UV) pip sync --quiet --compile-bytecode --python $(PY) requirements.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	touch $(STAMP)

demo: install
	$(VENV)/bin/vhub demo --dir demo

system-deps:
	bash scripts/system-deps.sh

test: install system-deps
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check src tests dags plugins schemas benchmarks
	$(VENV)/bin/ruff format --check src tests dags plugins schemas benchmarks
	$(VENV)/bin/mypy

lock: | $(UV)
	$(UV) pip compile --quiet --python-version 3.11 --extra dev pyproject.toml -o requirements.lock

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
