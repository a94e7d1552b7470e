# The two commands: `make demo` (the main job) and `make test` (the test suite).
# Both create or refresh the project-local virtual environment in .venv from requirements-dev.txt.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.foveal-installed

.PHONY: demo test lint bench-help clean-venv

$(STAMP): requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/foveal demo

test: $(STAMP)
	$(PY) -m ruff check src tests bench
	$(PY) -m pytest -n 2; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

lint: $(STAMP)
	$(PY) -m ruff check src tests bench

clean-venv:
	rm -rf $(VENV)
