# Two commands for a fresh machine (see README):
#   make demo   set up the Python environment, then run the end-to-end demo on the embedded stack
#   make test   set up the Python environment, then run the test suite against real services
PYTHON ?= python3
# bash with pipefail: a failing pip must fail the setup, even when its output is piped through a filter
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test bench lab workshop workshop-check compose-check clean

setup: $(VENV)/.installed

# The first run takes about 4-5 minutes on a 2-core machine (Python packages ~2 min, jars ~1 min,
# Spark's class archive ~1 min);
# each step says what it installs, and pip lists every package as it goes.
$(VENV)/.installed: pyproject.toml
	@echo "== First setup: about 4-5 minutes, once (later runs skip it). 3 steps."
	@echo "== step 1/3: Python virtual environment in $(VENV)"
	$(PYTHON) -m venv $(VENV)
	@echo "== step 2/3: Python packages: pyspark, delta-spark, jupyterlab, confluent-kafka... (~1 GB, ~2 min)"
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --progress-bar off -e ".[test]" \
		| awk '/^Collecting/ { n++; print "   [" n " of about 190] " $$2; fflush() }'
	@echo "== step 3/3: Maven jars for Spark and the Kafka broker (~90 MB from Maven Central, ~1 min),"
	@echo "   then the classes Spark loads, recorded so its JVM starts 3-4 s faster (~1 min, 200 MB)"
	$(BIN)/labkit jars spark kafka
	touch $@

# `labkit doctor` first: it stops with what to do when Java, a port or the state folder is not ready.
demo: setup
	$(BIN)/labkit doctor --for embedded
	$(BIN)/labkit demo

# Two workers (pytest-xdist), each with its own brokers and Spark; tests/conftest.py says which
# tests run together on one worker ("two workers"). TEST_WORKERS=0 runs all in one process.
TEST_WORKERS ?= 2
test: setup
	$(BIN)/pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadscope)

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
