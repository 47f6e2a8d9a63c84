# Two commands on a fresh machine:
#   make demo   - the whole line on emulated hardware
#   make test   - quality gates and the full test suite
# Each sets up what it needs (.venv at the repository root, Debian packages).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export YOLO_CONFIG_DIR := $(CURDIR)/.ultralytics
export YOLO_OFFLINE := 1
export YOLO_AUTOINSTALL := False
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# packages whose code mypy --strict checks (pure logic, no I/O adapters)
MYPY_STRICT := src/smartscreen/domain src/smartscreen/config.py src/smartscreen/strict_yaml.py firmware_bridge src/smartscreen/journal src/smartscreen/detection src/smartscreen/training src/smartscreen/imaging src/smartscreen/risk src/smartscreen/fusion/association.py src/smartscreen/fusion/masking.py src/smartscreen/gate/timing.py src/smartscreen/gate/records.py src/smartscreen/gate/controller.py src/smartscreen/gate/plc.py src/smartscreen/review src/smartscreen/api src/smartscreen/cli/serve.py

.PHONY: demo test lint typecheck imports pytest venv-runtime venv-dev system-deps bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# runtime install: numpy, opencv-headless, onnxruntime, fastapi ... (no torch)
$(VENV)/.runtime-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[modbus]'
	touch $@

# everything: dev tools and the train extra (torch, ultralytics)
$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,train,modbus]'
	@# ultralytics pulls opencv-python beside opencv-python-headless; both own cv2: keep headless
	$(BIN)/pip uninstall -y -q opencv-python || true
	$(BIN)/pip install -q --force-reinstall --no-deps opencv-python-headless
	touch $(VENV)/.runtime-installed $@

venv-runtime: $(VENV)/.runtime-installed
venv-dev: $(VENV)/.dev-installed

# Debian packages the tests use: chromium (browser test), aravis-tools (GigE Vision interop)
system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v arv-fake-gv-camera-0.8 >/dev/null || missing="$$missing aravis-tools"; \
	command -v arv-tool-0.8 >/dev/null || missing="$$missing aravis-tools-cli"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "NOTE: not root, cannot install$$missing; tests that need them will be skipped"; fi; \
	fi

demo: venv-runtime
	$(BIN)/smartscreen demo

lint: venv-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv-dev
	$(BIN)/mypy --strict $(MYPY_STRICT)

imports: venv-dev
	$(BIN)/lint-imports

pytest: venv-dev system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck imports pytest

bench: venv-dev
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .ultralytics
