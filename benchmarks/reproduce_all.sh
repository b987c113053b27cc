#!/usr/bin/env bash
# The paper-grid runs recorded in benchmarks/RESULTS.md ("Paper grid"), one after another, logs in
# runs/logs/. 2 epochs on a seeded 1,500-pair training subset and 1 seed, to fit a 2-core machine
# (~2 hours). Finished cells are read back, so the script can be re-run after an interruption.
set -u
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
B=.venv/bin/bscl
O="--epochs 2 --train-subset 1500"
MAIN=zero-shot,bsc-example-shuffle,bsc-example-shuffle-reuse-embeddings,mse,combo
mkdir -p runs/logs
$B reproduce stsb $O > runs/logs/stsb.log 2>&1
$B reproduce cqa-a $O --cells $MAIN,triplet,bsc-no-shuffle > runs/logs/cqa-a.log 2>&1
$B reproduce mrpc $O --cells zero-shot,bsc-example-shuffle,mse,combo > runs/logs/mrpc.log 2>&1
$B reproduce cqa-b $O --cells zero-shot,bsc-example-shuffle,mse,combo,triplet > runs/logs/cqa-b.log 2>&1
$B reproduce pfcc $O --cells zero-shot,bsc-example-shuffle,bsc-l2-norm,bsc-no-norm > runs/logs/pfcc.log 2>&1
$B reproduce wiki-unsup $O > runs/logs/wiki.log 2>&1
