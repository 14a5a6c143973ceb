#!/usr/bin/env bash
# GPU check of the tf.data integration (a few minutes): where the generator's ops run, then the
# quick benchmark (fit speed plain vs augment vs SyntheticMix, in-graph sampling speed with and
# without XLA / mixed precision, one- vs two-device MirroredStrategy loss curves).
#
#   bash benchmarks/gpu_check.sh [OUTPUT_DIR]        # default OUTPUT_DIR: gpu-check/
#
# Needs `pip install -e ".[gpu]"` (TensorFlow with CUDA). Without a GPU it says "no GPU" and
# still runs the quick benchmark on the CPU, so the script itself can be checked anywhere.
# Writes OUTPUT_DIR/{nvidia-smi.txt,placement.txt,results-tf_data-quick.json,benchmark.txt}.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu-check}"
mkdir -p "$out"
export TF_CPP_MIN_LOG_LEVEL=2

if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi | tee "$out/nvidia-smi.txt"
else
    echo "no GPU: nvidia-smi not found" | tee "$out/nvidia-smi.txt"
fi

# 1. Placement: the generator's variables, its in-graph sampler and SyntheticMix on /GPU:0.
timeout 300 python benchmarks/tf_data.py --placement 2>&1 | grep -v "^WARNING: All log" | tee "$out/placement.txt"
if grep -q '"ok": false' "$out/placement.txt"; then
    echo "PLACEMENT PROBLEM: generator ops are not on the GPU (see $out/placement.txt)" >&2
fi

# 2. Throughput (quick benchmark, 2 runs): compare the fit-speed ratios, and whether XLA and
#    mixed_float16 / mixed_bfloat16 beat float32 sampling on this GPU.
timeout 900 python benchmarks/tf_data.py --quick --runs 2 --out "$out/results-tf_data-quick.json" 2>&1 \
    | grep -v "^WARNING: All log" | tee "$out/benchmark.txt"
echo "gpu_check done: results in $out/"
