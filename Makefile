# The two commands of the README: `make demo` and `make test`.
# Both install everything they need into .venv first (pinned by requirements.lock).

VENV   ?= .venv
PY     := $(VENV)/bin/python
UV     := python3 -m uv
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint lock system-deps clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv==0.13.9"
	$(UV) venv --quiet --allow-existing --python python3.11 $(VENV)
	$(UV) pip sync --quiet --python $(PY) requirements.lock
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

lock:
	$(UV) pip compile --quiet --python-version 3.11 --extra dev pyproject.toml -o requirements.lock

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
