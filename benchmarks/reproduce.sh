#!/usr/bin/env bash
# Reproduce one task's committed results from nothing: its paper grid (`bscl reproduce`) and every
# head-to-head setting that benchmarks/RESULTS.md shows (`bscl compare`), with the recipes, seeds,
# epochs and models of the committed records (`bscl results --commands TASK` derives the commands
# from them).
#
#   benchmarks/reproduce.sh TASK        # into the committed folders: every recorded cell is read back,
#                                       # nothing trains, and the pages are regenerated
#   benchmarks/reproduce.sh TASK DIR    # train every cell again: records in DIR/results*, tables in
#                                       # DIR/RESULTS.md, to set beside the committed ones
#
# Finished cells are skipped and an interrupted one resumes, so the script can be re-run. Run it from
# a checkout set up with `make install` (BSCL=path/to/bscl to use another one).
set -euo pipefail
cd "$(dirname "$0")/.."
task=${1:?usage: benchmarks/reproduce.sh TASK [DIR]}
into=${2:-}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
BSCL=${BSCL:-.venv/bin/bscl}
commands=$("$BSCL" results --commands "$task" ${into:+--into "$into"})
[ -n "$commands" ] || { echo "no committed records of task $task" >&2; exit 2; }
while read -r line; do
  echo "+ $line"
  "$BSCL" ${line#bscl }
done <<< "$commands"
[ -n "$into" ] || "$BSCL" results
