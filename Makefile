# The two commands of the README. Each one sets everything up on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test lint serve bench clean

demo: $(STAMP)  ## the main job: the whole pipeline on the embedded server with sample data
	$(BIN)/splitkit demo

test: $(STAMP)  ## lint, type-check and the whole test suite
	bash scripts/ensure-chromium.sh
	$(BIN)/ruff check splitkit tests bench
	$(BIN)/ruff format --check splitkit tests bench
	$(BIN)/mypy  # strict: see [tool.mypy] in pyproject.toml
	$(BIN)/pytest -n 2 --dist loadfile  # both cores: most tests wait on HTTP, kernels or subprocesses

serve: $(STAMP)
	$(BIN)/splitkit serve

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
