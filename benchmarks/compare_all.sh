#!/usr/bin/env bash
# The head-to-head grid of issue 12 (benchmarks/RESULTS.md, "Head-to-head with sentence-transformers"):
# every recipe of each task (bscl-paper, bscl-ours and the task's sentence-transformers recipes),
# 3 seeds, MiniLM, full training sets, 1 epoch (the committed records' setting: a record of other
# options is refused before training; use another --results-dir for another setting). Finished cells are skipped and an interrupted one
# resumes, so the script can be re-run; each finished cell writes benchmarks/results/TASK/RECIPE/seed-N.json
# and regenerates the tables. Logs in runs/logs/compare-TASK.log. Commit benchmarks/results/ afterwards.
set -u
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
B=.venv/bin/bscl
O="--seeds 3 --epochs 1 --model minilm"
mkdir -p runs/logs
for task in stsb mrpc cqa-b pfcc cqa-a; do
  $B compare $task $O > runs/logs/compare-$task.log 2>&1
done
