#!/usr/bin/env bash
# The GPU check of the performance goals, prepared as one command for a machine with a CUDA GPU and
# sized for a 15-minute GPU lease (every stage has its own time limit; 10 minutes in all at most):
#
#   1. the CUDA tests (tests/cluster/test_cuda.py: the trainer on the GPU against the CPU, resident
#      data, the accelerator's epoch loop, DDP on two GPUs where there are two);
#   2. the suite on the GPU, eager: the fp32 and bf16 GEMM peaks, the paper ViT's step (fp32 and bf16)
#      and the whole trainer on it (resident data, bf16: trainer_paper), its MFU against the measured
#      bf16 peak (trainer_paper_mfu), the projected N = 1M x 200-epoch wall time
#      (trainer_paper_1M_200_hours), 2-GPU DDP scaling where there are two (trainer_paper_ddp2), and
#      the loader;
#   3. the same compiled (torch.compile, bf16 only: rows ..._compiled);
#   4. the paper ViT's step at batch 1024.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]        # writes OUT_DIR/gpu_*.csv (default results/benchmarks)
#
# Not yet run on a GPU (no GPU has been lent to this project). Needs python3 with torch (CUDA build),
# numpy, h5py, pandas, scipy and pytest; the package is taken from src/, so nothing is installed. A
# stage that fails or runs out of time is reported and the next one runs; the exit status is then 1.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/benchmarks}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python=${PYTHON:-python3}

"$python" -c 'import sys, torch; torch.cuda.is_available() or sys.exit(
    f"gpu_check: this torch ({torch.__version__}) sees no CUDA device; run it on a GPU machine")' || exit 1

failed=()
stage() {  # stage NAME SECONDS COMMAND...: run COMMAND with a time limit; note a failure and go on
    local name=$1 limit=$2 t0=$SECONDS
    shift 2
    echo "== gpu_check: $name (at most $limit s)"
    timeout -k 10 "$limit" "$@"
    local status=$?
    echo "== gpu_check: $name: status $status after $((SECONDS - t0)) s"
    [ "$status" -eq 0 ] || failed+=("$name (status $status)")
}

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$out/gpu_info.csv"
suite=("$python" benchmarks/run.py --device cuda --threads 8)
stage cuda_tests 120 "$python" -m pytest -q -p no:cacheprovider tests/cluster/test_cuda.py
stage suite 180 "${suite[@]}" --only matmul_vit_shape vit_train_paper vit_train_default trainer ddp loader \
    --out "$out/gpu_suite.csv"
stage suite_compiled 240 "${suite[@]}" --compile --only trainer --out "$out/gpu_suite_compiled.csv"
stage batch1024 60 "${suite[@]}" --batch 1024 --only vit_train_paper --out "$out/gpu_suite_batch1024.csv"

"$python" - "$out" <<'EOF'
import csv, sys
from pathlib import Path
rows = {r["name"]: r for f in sorted(Path(sys.argv[1]).glob("gpu_suite*.csv")) for r in csv.DictReader(open(f))}
for name in ("matmul_peak_bf16", "vit_train_paper_bf16", "trainer_paper", "trainer_paper_mfu",
             "trainer_paper_1M_200_hours", "vit_train_paper_compiled_bf16", "trainer_paper_compiled",
             "trainer_paper_compiled_mfu", "trainer_paper_compiled_1M_200_hours", "trainer_paper_ddp2"):
    r = rows.get(name)
    if r:
        ratio = f"  ratio {float(r['ratio']):.2f} ({r['reference']})" if r["ratio"] else ""
        print(f"{name:<38} {float(r['value']):>12.4g} {r['unit']}{ratio}")
EOF
if [ "${#failed[@]}" -gt 0 ]; then
    printf 'gpu_check: failed: %s\n' "${failed[@]}" >&2
    exit 1
fi
