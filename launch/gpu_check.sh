#!/usr/bin/env bash
# Runs on a GPU machine from the repository root, with gpu_bundle/ made by launch/gpu_bundle.sh: every
# CPU<->CUDA parity test (random inputs, outputs poisoned with NaN before each run), then a table of the
# results. Output also goes to $OUT/gpu_check.txt when OUT is set (the device tool's result folder).
# Not yet covered (issue 6): training with --device cuda and the GPU throughput benchmark.
set -uo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH="$PWD/gpu_bundle/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib:${LD_LIBRARY_PATH:-}"
log=${OUT:-/tmp}/gpu_check.txt
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee "$log"
summary=()
for t in test_cuda_elementwise test_cuda_ops test_cuda_gemm_attention; do
  start=$(date +%s%N)
  timeout 300 "gpu_bundle/bin/$t" >"$log.$t" 2>&1
  rc=$?
  ms=$((($(date +%s%N) - start) / 1000000))
  cat "$log.$t" >>"$log"
  grep -E 'Failure|FAILED' "$log.$t" | head -20
  ok=$(grep -c '^\[       OK \]' "$log.$t")
  skipped=$(grep -c '^\[  SKIPPED \] .* ([0-9]* ms)$' "$log.$t")
  failed=$(grep -c '^\[  FAILED  \] .* ([0-9]* ms)$' "$log.$t")
  summary+=("$(printf '%-26s %4d passed %4d failed %4d skipped  rc=%-3s %7d ms' "$t" "$ok" "$failed" "$skipped" "$rc" "$ms")")
done
echo "== cuBLASLt GEMM throughput" | tee -a "$log"
timeout 120 gpu_bundle/bin/bench_gemm_cuda 2>&1 | tee -a "$log"
{
  echo
  echo "GPU check summary:"
  printf '%s\n' "${summary[@]}"
} | tee -a "$log"
