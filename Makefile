# Two commands for a fresh machine (see README):
#   make demo   set up the Python environment, then run the end-to-end demo on the embedded stack
#   make test   set up the Python environment, then run the test suite against real services
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test bench lab workshop clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	$(BIN)/labkit jars spark kafka
	touch $@

demo: setup
	$(BIN)/labkit demo

test: setup
	$(BIN)/pytest

bench: setup
	$(BIN)/python bench/stack.py
	$(BIN)/python bench/bridge.py
	$(BIN)/python bench/pipeline.py

workshop: setup
	$(BIN)/python tools/run_workshop.py --out out/workshop

lab: setup
	$(BIN)/labkit up
	$(BIN)/jupyter lab

clean:
	-$(BIN)/labkit down
	rm -rf .labkit .labkit-test* data lake out
