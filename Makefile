# The two commands a new user needs: `make demo` and `make test`.
# Both install into a local virtual environment (.venv) with the pinned, tested set.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: install browser demo test test-slow clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	@echo "compiling the synthetic world's kernels (numba, once: about 10 s; cached on disk)"
	$(BIN)/python -c "from cvbench_plugins.datasets.synthetic import generate, jit; jit.compile_kernels()"
	touch $@

demo: install
	$(BIN)/cvbench run --pretrainer mocov2 --head safa
	$(BIN)/cvbench leaderboard runs

# The HTML report's test renders the page in headless Chromium (Debian's package), installed here where missing.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Chromium for the HTML report's browser test (apt-get install chromium)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "warning: no chromium on PATH and no root apt-get to install it: the browser test will be skipped"; \
	fi

test: install browser
	$(BIN)/python -m pytest

test-slow: install
	$(BIN)/python -m pytest -m slow

clean:
	rm -rf $(VENV) .pytest_cache
