# Two entry points (see README.md):
#   make run   - create .venv, install bscl, train + evaluate the default model on STSb
#   make test  - create .venv, install bscl with test tools, run the test suite
# torch is pinned to the CPU wheel through constraints.txt so that no dependency can upgrade it.

PYTHON ?= python3
VENV   ?= .venv
PIP     = $(VENV)/bin/pip
BSCL    = $(VENV)/bin/bscl
RUN_ARGS ?= --train.model minilm --data.task stsb --data.train_subset 2000 --train.epochs 1 \
            --train.batch_size 32 --loss.name bsc --loss.tau 0.1 --train.output_dir runs/stsb-minilm-quick

.PHONY: install run test lint bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install
	HF_HUB_OFFLINE=1 $(BSCL) train $(RUN_ARGS)

test: install
	HF_HUB_OFFLINE=1 $(VENV)/bin/python -m pytest -q

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
