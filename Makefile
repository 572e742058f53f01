# Two commands for a fresh machine (see README):
#   make demo   set up the Python environment, then run the end-to-end demo on the embedded stack
#   make test   set up the Python environment, then run the test suite against real services
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test bench lab workshop workshop-check compose-check clean

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

# The Docker workshop, checked without Docker (CI runs this): Compose's own loader on every profile,
# the lab's lint of the compose file and image, and amd64 + arm64 for every image and wheel.
compose-check: setup
	cd tools/compose-check && go run . -file ../../docker-compose.yml -env-file ../../.env.example
	$(BIN)/python tools/compose_lint.py
	$(BIN)/python tools/multiarch_check.py

# On a machine with Docker, before a workshop: build, up --wait, lesson 00 and a solution in the
# JupyterLab container, each container's memory, down -v (docs/workshop-docker.md). Not in CI.
workshop-check:
	$(PYTHON) tools/workshop_check.py

lab: setup
	$(BIN)/labkit up
	$(BIN)/jupyter lab

clean:
	-$(BIN)/labkit down
	rm -rf .labkit .labkit-test* data lake out
