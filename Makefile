# The two commands a new user needs: `make demo` and `make test`.
# Both install into a local virtual environment (.venv) with the pinned, tested set.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: install demo test test-slow clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

demo: install
	$(BIN)/cvbench run --pretrainer mocov2 --head safa
	$(BIN)/cvbench leaderboard runs

test: install
	$(BIN)/python -m pytest

test-slow: install
	$(BIN)/python -m pytest -m slow

clean:
	rm -rf $(VENV) .pytest_cache
