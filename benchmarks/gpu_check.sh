#!/usr/bin/env bash
# The GPU check of the performance goals, prepared as one command for a machine with a CUDA GPU:
# the CUDA tests (trainer on the GPU against the CPU), then the GEMM peaks and the training
# throughput of the paper ViT and of the default preset in fp32 and under bf16 autocast (the paper
# ViT compiled too, and at batch 1024), with the whole trainer's and the loader's rates beside
# them. About 5 minutes on one H200 by estimate (most of it compiling); not yet run on a GPU.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]        # writes OUT_DIR/gpu_*.csv (default results/benchmarks)
#
# Needs python3 with torch (CUDA build), numpy, h5py, pandas, scipy and pytest; the package is
# taken from src/, so nothing is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/benchmarks}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python=${PYTHON:-python3}

"$python" -c 'import sys, torch; torch.cuda.is_available() or sys.exit(
    f"gpu_check: this torch ({torch.__version__}) sees no CUDA device; run it on a GPU machine")'
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$out/gpu_info.csv"
"$python" -m pytest -q -p no:cacheprovider tests/cluster/test_cuda.py
"$python" benchmarks/run.py --device cuda --threads 8 --only matmul_vit_shape vit_train_paper vit_train_default trainer loader \
    --out "$out/gpu_suite.csv"
"$python" benchmarks/run.py --device cuda --threads 8 --compile --only vit_train_paper \
    --out "$out/gpu_suite_compiled.csv"
"$python" benchmarks/run.py --device cuda --threads 8 --batch 1024 --only vit_train_paper \
    --out "$out/gpu_suite_batch1024.csv"
