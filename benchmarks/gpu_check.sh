#!/usr/bin/env bash
# GPU check (issue 35, item 6): run it whenever a CUDA GPU is at hand, then put its table in
# BENCHMARKS.md with the card's name. Under 10 minutes on one GPU:
#   1. the GPU-marked tests (pytest -m gpu: held bf16 weights on CUDA, vjepa2 bench on CUDA, auto);
#   2. a few steps of torchrun pretraining on one GPU with FSDP2, then FSDP2 + torch.compile;
#   3. the encoder benchmark on CUDA: ours against transformers (vjepa2 bench + the encoder_speed
#      table's configurations, batch 1 and 4).
# It ends with one table: what ran, its status and its figure.
#   bash benchmarks/gpu_check.sh                 # OUT=runs/gpu-check by default
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu-check}
STEPS=${STEPS:-20}
mkdir -p "$OUT"
export OMP_WAIT_POLICY=PASSIVE
if ! python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA GPU visible to torch; nothing to check" >&2
    exit 2
fi
CARD=$(python -c "import torch; p = torch.cuda.get_device_properties(0); print(f'{p.name}, {p.total_memory / 2**30:.0f} GiB')")
declare -a ROWS

row() {  # row NAME STATUS FIGURE
    ROWS+=("| $1 | $2 | $3 |")
}

timed() {  # timed SECONDS LOGFILE COMMAND...: run with a time limit, its output in LOGFILE
    local limit=$1 log=$2
    shift 2
    local start=$SECONDS
    timeout "$limit" "$@" >"$log" 2>&1
    local rc=$?
    echo $((SECONDS - start)) >"$log.seconds"
    return $rc
}

# 1. GPU-marked tests
if timed 180 "$OUT/tests.log" python -m pytest -q -m gpu tests/test_gpu.py; then status=pass; else status=FAIL; fi
row "pytest -m gpu" "$status" "$(tail -1 "$OUT/tests.log")"

# 2. pretraining on one GPU: FSDP2, then FSDP2 + torch.compile (steps from the tiny config, bf16 auto)
for mode in fsdp2 fsdp2+compile; do
    extra=()
    [ "$mode" = "fsdp2+compile" ] && extra=(run.compile=true)
    folder="$OUT/pretrain-${mode/+/-}"
    rm -rf "$folder"
    if timed 240 "$OUT/pretrain-${mode/+/-}.log" torchrun --standalone --nproc_per_node=1 -m vjepa2 pretrain \
        --config configs/pretrain/tiny-cpu.yaml run.parallel=fsdp run.device=auto "run.steps=$STEPS" \
        run.log_every=5 "run.out=$folder" data.synthetic_videos=64 "${extra[@]}"; then
        status=pass
    else
        status=FAIL
    fi
    figure=$(python - "$folder/log.jsonl" <<'PY'
import json, sys
try:
    rows = [json.loads(line) for line in open(sys.argv[1])]
except OSError:
    print("no log"); sys.exit()
last = rows[-1]
nan = float("nan")
print(f"step {last.get('step')}, loss {last.get('loss', nan):.4f}, {last.get('clips_per_s', nan):.1f} clips/s, "
      f"{last.get('max_mem_gb', nan):.2f} GB, {last.get('dtype')}")
PY
)
    row "torchrun pretrain, 1 GPU, $mode, $STEPS steps" "$status" "$figure ($(cat "$OUT/pretrain-${mode/+/-}.log.seconds") s in all)"
done

# 3. the encoder on CUDA: vjepa2 bench (matmul peaks, clips/s per held precision), then ours
#    against transformers in each one's best configuration (benchmarks/encoder_speed.py --device cuda)
if timed 120 "$OUT/bench.log" python -m vjepa2 bench --device cuda --encoder random:vitl --out "$OUT"; then
    status=pass
else
    status=FAIL
fi
figure=$(python - "$OUT/bench.json" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    print("no bench.json"); sys.exit()
rows = ", ".join(f"{x['dtype']} {x['clips_per_s']:.1f} clips/s ({100 * (x['fraction_of_peak'] or 0):.0f}% of peak)" for x in r["rows"])
print(f"ViT-L 16x256: {rows}; auto: {r['auto']['dtype']}")
PY
)
row "vjepa2 bench --device cuda (ViT-L)" "$status" "$figure"
if timed 240 "$OUT/encoder_speed.log" python benchmarks/encoder_speed.py --device cuda --repeats 5; then
    status=pass
else
    status=FAIL
fi
row "encoder_speed.py --device cuda (ViT-L 16x256, vs transformers)" "$status" \
    "$(grep '^batch' "$OUT/encoder_speed.log" | tr '\n' ';')"

echo
echo "GPU check on $CARD, $(date -u +%F), torch $(python -c 'import torch; print(torch.__version__)')"
echo "| check | status | figure |"
echo "|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo "(logs in $OUT)"
