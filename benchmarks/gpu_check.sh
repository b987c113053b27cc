#!/usr/bin/env bash
# The CUDA, bf16 and flash-attention paths of bscl on one GPU, in about 8 minutes (each step has a time
# limit; 15 minutes if every step ran into its limit).
#
# Run from the repository root on a machine with one CUDA GPU (no internet needed beyond the package
# registries; the STSb files must be under $BSCL_DATA_ROOT, default shared/data or ../shared/data):
#
#     OUT=/tmp/gpu_check bash benchmarks/gpu_check.sh
#
# Steps (each with its own time limit; a failed step is recorded and the next one still runs):
#   1. environment: the current python if it has CUDA torch and bscl's dependencies, else a fresh
#      .venv-gpu with `pip install -c constraints.txt -e .[dev]` (PyPI's Linux torch wheel has CUDA);
#   2. flash-attention: `pip install --only-binary=:all: flash-attn` (a prebuilt wheel only: building it
#      takes an hour); without it bscl's padding-free attention runs one SDPA call per sentence;
#   3. padding-free = padded on CUDA (tests/test_padding_free.py::test_cuda_equals_padded): fp32 to
#      1e-5, then bf16 to a relative Frobenius error of 2e-2 (tiny and MiniLM, lengths 1..max);
#   4. one short `bscl train` in bf16 (`--hf.bf16 true`, STSb, 512 pairs, 1 epoch);
#   5. `bscl eval` and `bscl encode` of the trained model on the GPU;
#   6. benchmarks/train_throughput.py: sentence-transformers' padded trainer vs bscl padding-free, fp32
#      and bf16, plus sentence-transformers' own unpad_inputs path where flash-attn installed.
# Everything is written under $OUT: one log per step, summary.txt (what each step printed last and its
# exit status), env.txt, nvidia-smi.txt and the benchmark JSON.
#
# Without a CUDA device the script says so and exits 3 after step 1 (nothing else can be checked).

set -uo pipefail

OUT=${OUT:-runs/gpu_check}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
if [ -z "${BSCL_DATA_ROOT:-}" ]; then
    for root in shared/data ../shared/data; do
        [ -d "$root" ] && export BSCL_DATA_ROOT=$(cd "$root" && pwd) && break
    done
fi

log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$SUMMARY"; }

# step NAME SECONDS COMMAND...: run COMMAND with a time limit, its output in $OUT/NAME.log
step() {
    local name=$1 limit=$2
    shift 2
    log "== $name (limit ${limit}s): $*"
    local t0=$SECONDS
    timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 15 "$OUT/$name.log" | sed 's/^/    /' >>"$SUMMARY"
    log "$name: exit $rc after $((SECONDS - t0)) s$([ $rc -eq 124 ] && echo ' (time limit)')"
    return $rc
}

# ---- 1. environment ---------------------------------------------------------------------------------
PY=${PYTHON:-python3}
{ command -v nvidia-smi >/dev/null && nvidia-smi; } >"$OUT/nvidia-smi.txt" 2>&1
if ! "$PY" -c "import torch, sentence_transformers, faiss, datasets; assert torch.cuda.is_available()" 2>/dev/null; then
    if ! "$PY" -c "import torch; assert torch.cuda.is_available()" 2>/dev/null && ! nvidia-smi -L >/dev/null 2>&1; then
        log "no CUDA device visible (torch.cuda.is_available() false, no nvidia-smi): nothing to check on a GPU"
        "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" >>"$SUMMARY" 2>&1
        exit 3
    fi
    step install 240 bash -c "'$PY' -m venv .venv-gpu && .venv-gpu/bin/pip install -q -c constraints.txt torch \
        && .venv-gpu/bin/pip install -q -c constraints.txt -e '.[dev]'" || { log "install failed"; exit 4; }
    PY=.venv-gpu/bin/python
fi
"$PY" - >"$OUT/env.txt" 2>&1 <<'EOF'
import torch, transformers, sentence_transformers
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
print("device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
print("transformers", transformers.__version__, "sentence-transformers", sentence_transformers.__version__)
EOF
cat "$OUT/env.txt" >>"$SUMMARY"
if ! "$PY" -c "import torch; assert torch.cuda.is_available()"; then
    log "torch in $PY has no CUDA device: nothing to check on a GPU"
    exit 3
fi
BSCL=("$PY" -m bscl.cli)

# ---- 2. flash-attention (a wheel, or the SDPA path) -----------------------------------------------------
if step flash_attn 90 "$PY" -m pip install -q --only-binary=:all: flash-attn \
    && "$PY" -c "import flash_attn; print('flash_attn', flash_attn.__version__)" >>"$SUMMARY" 2>&1; then
    FLASH=1
    log "attention: flash-attention varlen kernel (bf16/fp16 on CUDA)"
else
    FLASH=0
    log "attention: no flash-attn wheel installed; padding-free attention = one SDPA call per sentence"
fi

# ---- 3. padding-free equivalence on CUDA -------------------------------------------------------------
step equivalence 120 "$PY" -m pytest -q -p no:cacheprovider tests/test_padding_free.py -k "cuda_equals_padded" -rs

# ---- 4. a short bf16 training run ----------------------------------------------------------------------
TRAIN="$OUT/train-bf16"
step train_bf16 120 "${BSCL[@]}" train --data.task stsb --data.train_subset 512 --data.eval_subset 256 \
    --train.epochs 1 --train.output_dir "$TRAIN" --train.overwrite true --hf.bf16 true --hf.disable_tqdm true

# ---- 5. eval and encode on the GPU ---------------------------------------------------------------------
MODEL="$TRAIN/model"
[ -d "$MODEL" ] || MODEL=minilm
step eval 60 "${BSCL[@]}" eval --task stsb --model "$MODEL" --split test --device cuda \
    --output "$OUT/eval.json"
printf 'a sentence on the GPU\nanother, somewhat longer sentence to encode\nshort\n' >"$OUT/texts.txt"
step encode 45 "${BSCL[@]}" encode --model "$MODEL" --input "$OUT/texts.txt" --output "$OUT/embeddings.npy" --device cuda

# ---- 6. throughput against sentence-transformers on this GPU --------------------------------------------
SIDES=st,bscl-padfree
[ "$FLASH" = 1 ] && SIDES_BF16=st,st-unpad,bscl-padfree || SIDES_BF16=$SIDES
step throughput_fp32 100 "$PY" benchmarks/train_throughput.py --sides "$SIDES" --steps 30 --rounds 2 \
    --warmup-steps 3 --peak-size 8192 --encode 960 --out "$OUT/train_throughput_fp32.json"
step throughput_bf16 100 "$PY" benchmarks/train_throughput.py --sides "$SIDES_BF16" --bf16 --steps 30 \
    --rounds 2 --warmup-steps 3 --peak-size 8192 --out "$OUT/train_throughput_bf16.json"

log "done; logs in $OUT"
