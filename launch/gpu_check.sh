#!/usr/bin/env bash
# The GPU check (issue 6), run from the repository root on a machine with one GPU. It needs gpu_bundle/
# (launch/gpu_bundle.sh: built with our toolchain and Debian libraries, copied with the shared libraries
# it needs, so that the GPU machine needs only its CUDA 13 runtime), which it unpacks from gpu_bundle.tgz when
# that is there; when both are missing it builds the bundle first. Then, in this order:
#   1. every CPU<->CUDA parity test (random inputs, outputs poisoned with NaN before each run), the CUDA
#      training tests among them (20 TrainStep steps in fp32 and bf16 against the CPU, checkpoints), and
#      cuDNN's fused attention against the double reference (cuDNN is PyTorch's copy, found in site-packages);
#   2. a 20-iteration `prores train` run on this repository's text on the CPU in fp32 and with --bf16,
#      then on the GPU in fp32 and with --bf16, and their losses side by side (the GPU's bf16 run against
#      both CPU runs), then the blocks' activation RMS of iteration 20 with the same limits;
#   3. the cuBLASLt GEMM throughput, flash against cuDNN attention per layer (bench_attention_cuda), and the
#      training-step benchmark (350M and 1B at sequence length 1024, one micro-batch of 8 per step, with
#      unfused, flash and cuDNN attention; 350M also with the activations between matmuls in f32, to time what
#      their bf16 storage gains, with 8 micro-batches of 8 per step and with every block recomputed (what
#      --recompute-granularity full costs); 1B (the reference's ffn of 5632)
#      also with an ffn of 5461, not a multiple of 8, to time what unaligned GEMM rows cost; the 71M width of the
#      depth-scaling runs at 12 and 120 layers, where per-kernel host overhead would show); Nsight Compute's
#      per-kernel times of a 2-layer 350M step and its sections on the four flash-attention kernels;
#   4. with gpu_bundle/mpi: two ranks sharing the GPU, tensor, pipeline and data parallelism and ZeRO-1 over
#      NCCL against the one-rank run, and the NCCL communicator tests (launch/gpu_check_layouts.sh);
# and prints a short table last. `--throughput-only` runs step 3 alone. The summary log gpu_check.txt and
# logs.tgz (every log and metrics file) go to $OUT (the device tool's result folder) when set, else /tmp;
# logs.tgz and gpu_check_summary.txt (the table's lines so far) are refreshed after every step.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# gpu_bundle.tgz is how the bundle travels (launch/gpu_bundle.sh), and replaces a gpu_bundle/ left from an
# earlier call; without either, build it here.
if [ -f gpu_bundle.tgz ]; then
  rm -rf gpu_bundle && tar xzf gpu_bundle.tgz || exit 1
fi
[ -x gpu_bundle/bin/prores ] || bash launch/gpu_bundle.sh
# cuDNN's runtime (libcudnn.so.9 and its engine libraries, too large to carry) from PyTorch's site-packages
# (nvidia-cudnn-cu13), when the machine has it.
cudnn_lib=$(python3 - <<'PY' 2>/dev/null
import glob, site
dirs = site.getsitepackages() + [site.getusersitepackages()]
print(next((p.rsplit("/", 1)[0] for d in dirs for p in glob.glob(f"{d}/nvidia/**/libcudnn.so.9", recursive=True)), ""))
PY
)
export LD_LIBRARY_PATH="$PWD/gpu_bundle/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib${cudnn_lib:+:$cudnn_lib}:${LD_LIBRARY_PATH:-}"
log=${OUT:-/tmp}/gpu_check.txt
out=/tmp/gpu_check
rm -rf "$out" && mkdir -p "$out"
bin=gpu_bundle/bin
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee "$log"
echo "cuDNN runtime: ${cudnn_lib:-not found in site-packages}" | tee -a "$log"
summary=()
# The logs so far and the summary lines so far, into $OUT after each step: a call the device tool stops
# early still brings back what ran.
save_logs() {
  printf '%s\n' "${summary[@]}" >"${OUT:-/tmp}/gpu_check_summary.txt"
  tar czf "${OUT:-/tmp}/logs.tgz" -C /tmp gpu_check
}
[ "${1:-}" = --throughput-only ] && throughput_only=1 || throughput_only=0

if [ "$throughput_only" = 0 ]; then
echo "== 1. parity tests" | tee -a "$log"
for t in test_cuda_elementwise test_cuda_ops test_cuda_gemm_attention test_cuda_flash_attention \
         test_cuda_cudnn_attention test_cuda_train; do
  start=$(date +%s%N)
  timeout 300 "$bin/$t" >"$out/$t.txt" 2>&1
  rc=$?
  ms=$((($(date +%s%N) - start) / 1000000))
  grep -E 'Failure|FAILED|error' "$out/$t.txt" | head -20 | tee -a "$log"
  ok=$(grep -c '^\[       OK \]' "$out/$t.txt")
  skipped=$(grep -c '^\[  SKIPPED \] .* ([0-9]* ms)$' "$out/$t.txt")
  failed=$(grep -c '^\[  FAILED  \] .* ([0-9]* ms)$' "$out/$t.txt")
  summary+=("$(printf '%-26s %4d passed %4d failed %4d skipped  rc=%-3s %7d ms' "$t" "$ok" "$failed" "$skipped" "$rc" "$ms")")
done

# Out-of-bounds accesses, and races and barrier misuse in flash attention (its f32 path and its cp.async
# bf16 path, *Bf16*).
if command -v compute-sanitizer >/dev/null; then
  for check in "memcheck test_cuda_flash_attention *PartialTiles*:*HeadSize128*:*OneToken*:*Bf16*" \
               "racecheck test_cuda_flash_attention *PartialTiles*:*HeadSize128*:*OneToken*:*Bf16*" \
               "synccheck test_cuda_flash_attention *Bf16*" \
               "memcheck test_cuda_ops *" "memcheck test_cuda_gemm_attention *"; do
    read -r tool t filter <<<"$check"
    timeout 90 compute-sanitizer --tool "$tool" --error-exitcode 9 "$bin/$t" --gtest_filter="$filter" \
      >"$out/sanitizer_${tool}_$t.txt" 2>&1
    summary+=("$(printf '%-40s rc=%s: %s' "$tool $t" "$?" "$(grep -m1 'SUMMARY' "$out/sanitizer_${tool}_$t.txt")")")
  done
fi
save_logs

echo "== 2. 20 training iterations, CPU vs GPU" | tee -a "$log"
source launch/gpu_check_model.sh  # corpus, model
for run in cpu:"--device cpu" cpu_bf16:"--device cpu --bf16" gpu_fp32:"--device cuda" \
           gpu_bf16:"--device cuda --bf16"; do
  name=${run%%:*}
  # shellcheck disable=SC2086
  timeout 300 "$bin/prores" train --data-path "$corpus" $model ${run#*:} --log-dir "$out/run_$name" \
    >"$out/run_$name.txt" 2>&1 || echo "run $name failed: $(tail -1 "$out/run_$name.txt")" | tee -a "$log"
  tail -2 "$out/run_$name.txt" | tee -a "$log"
done
python3 - "$out" <<'PY' 2>&1 | tee -a "$log" "$out/losses.txt"
import json, sys
out = sys.argv[1]
runs, act_rms = {}, {}
names = ("cpu", "cpu_bf16", "gpu_fp32", "gpu_bf16")
for name in names:
    try:
        records = [json.loads(l) for l in open(f"{out}/run_{name}/metrics.jsonl") if '"loss"' in l]
    except OSError:
        records = []
    runs[name] = [r["loss"] for r in records]
    act_rms[name] = records[-1].get("act_rms", []) if len(records) == 20 else []  # per block, at iteration 20
# (label, run, reference run, limit): the GPU runs against the CPU's fp32 run; bf16 also against the CPU's bf16.
pairs = (("fp32", "gpu_fp32", "cpu", 1e-4), ("bf16", "gpu_bf16", "cpu", 2e-2),
         ("bf16 vs cpu bf16", "gpu_bf16", "cpu_bf16", 2e-2))
print(f"{'iter':>4} " + " ".join(f"{n.replace('_', ' '):>9}" for n in names) + " " +
      " ".join(f"{'rel ' + p[0]:>17}" for p in pairs))
worst = {p[0]: 0.0 for p in pairs}
at = lambda name, i: runs[name][i] if i < len(runs[name]) else float("nan")
for i in range(20):
    rel = [abs(at(run, i) - at(ref, i)) / abs(at(ref, i)) for _, run, ref, _ in pairs]
    for p, r in zip(pairs, rel):
        worst[p[0]] = max(worst[p[0]], r) if r == r else float("nan")
    print(f"{i + 1:4d} " + " ".join(f"{at(n, i):9.5f}" for n in names) + " " + " ".join(f"{r:17.2e}" for r in rel))
ok = all(len(runs[n]) == 20 for n in names) and all(worst[p[0]] < p[3] for p in pairs)
print(f"TRAIN20 {'PASS' if ok else 'FAIL'}: worst relative loss difference " +
      ", ".join(f"{p[0]} {worst[p[0]]:.2e} (limit {p[3]:.0e})" for p in pairs))
rms_worst = {p[0]: max((abs(a - b) / abs(b) for a, b in zip(act_rms[p[1]], act_rms[p[2]])), default=float("nan"))
             for p in pairs}
rms_ok = all(len(act_rms[n]) == len(act_rms["cpu"]) > 0 for n in names) and all(rms_worst[p[0]] < p[3] for p in pairs)
print(f"ACTRMS {'PASS' if rms_ok else 'FAIL'}: worst relative difference of the blocks' activation RMS at iteration 20 "
      + ", ".join(f"{p[0]} {rms_worst[p[0]]:.2e}" for p in pairs))
PY
fi
save_logs

echo "== 3. throughput" | tee -a "$log"
timeout 120 "$bin/bench_gemm_cuda" 2>&1 | tee -a "$log"
timeout 120 "$bin/bench_attention_cuda" 2>&1 | tee -a "$log" "$out/attention.txt"
m350="--num-layers 24 --hidden-size 1024 --ffn-hidden-size 2736 --num-attention-heads 16 --seq-length 1024 --vocab-size 32000"
m71="--num-layers 12 --hidden-size 512 --ffn-hidden-size 1368 --num-attention-heads 8 --seq-length 1024
  --vocab-size 32000"
m71x120=${m71/--num-layers 12/--num-layers 120}
m1b="--num-layers 24 --hidden-size 2048 --ffn-hidden-size 5632 --num-attention-heads 32 --seq-length 1024 --vocab-size 32000"
for bench in "350M bf16 unfused":"$m350 --device cuda --bf16 --attention-backend unfused" \
             "350M bf16 flash":"$m350 --device cuda --bf16 --attention-backend flash" \
             "350M bf16 cudnn":"$m350 --device cuda --bf16 --attention-backend cudnn" \
             "350M bf16 flash, f32 act.":"$m350 --device cuda --bf16 --attention-backend flash --f32-activations" \
             "350M bf16 flash, alpha 0":"$m350 --device cuda --bf16 --attention-backend flash --alpha 0" \
             "350M bf16 flash, 8 x 8":"$m350 --device cuda --bf16 --attention-backend flash --global-batch-size 64" \
             "350M bf16 flash, recompute":"$m350 --device cuda --bf16 --recompute-granularity full" \
             "1B bf16 flash":"$m1b --device cuda --bf16 --attention-backend flash" \
             "1B bf16 cudnn":"$m1b --device cuda --bf16 --attention-backend cudnn" \
             "1B bf16 flash, ffn 5461":"${m1b/5632/5461} --device cuda --bf16 --attention-backend flash" \
             "71M bf16 flash":"$m71 --device cuda --bf16 --attention-backend flash" \
             "71M bf16 flash, 120 layers":"$m71x120 --device cuda --bf16 --attention-backend flash"; do
  # shellcheck disable=SC2086
  line=$(timeout 180 "$bin/bench_train_step" ${bench#*:} --micro-batch-size 8 --warmup 2 --steps 3 2>&1 | tee -a "$log" | tail -1)
  summary+=("$(printf '%-26s %s' "${bench%%:*}" "$(echo "$line" | sed -E 's/.*\| ([0-9]+ tokens\/s).*\| (MFU [0-9.]+%).*/\1, \2/')")")
done
if command -v ncu >/dev/null; then  # per-kernel times of one 350M-width step (2 layers), bf16 + flash
  # shellcheck disable=SC2086
  timeout 100 ncu --clock-control none --print-units base --metrics gpu__time_duration.sum --csv --page raw \
    "$bin/bench_train_step" ${m350/--num-layers 24/--num-layers 2} --device cuda --bf16 --micro-batch-size 8 \
    --warmup 1 --steps 1 >"$out/ncu.csv" 2>"$out/ncu.err"
  python3 - "$out/ncu.csv" <<'PY' 2>&1 | tee -a "$log"
import csv, collections, sys
rows = list(csv.reader(open(sys.argv[1])))  # the program's own output first, then the header row "ID", ...
start = next(i for i, r in enumerate(rows) if r and r[0] == "ID")
head = rows[start]
name, dur = head.index("Kernel Name"), head.index("gpu__time_duration.sum")
total, calls = collections.Counter(), collections.Counter()
for r in rows[start + 2:]:  # after the units row
    if len(r) > dur:
        k = r[name].split("(")[0][:70]
        total[k] += float(r[dur].replace(",", ""))
        calls[k] += 1
s = sum(total.values())
print(f"ncu: {sum(calls.values())} kernels in 2 steps (warm-up and timed), {s / 2e6:.2f} ms of kernel time per step")
for k, t in total.most_common(20):
    print(f"{100 * t / s:5.1f}% {t / 2e6:7.3f} ms {calls[k] // 2:4d}x {k}")
PY
  # The flash kernels of one 350M layer (forward, delta, dK/dV, dQ) in detail: registers, occupancy, throughput
  # and what their warps stall on, for the next round of work on them. Full report in logs.tgz.
  # shellcheck disable=SC2086
  timeout 120 ncu --clock-control none -k regex:flash --launch-count 4 --section SpeedOfLight --section Occupancy \
    --section LaunchStats --section WarpStateStats "$bin/bench_train_step" ${m350/--num-layers 24/--num-layers 1} \
    --device cuda --bf16 --micro-batch-size 8 --warmup 0 --steps 1 >"$out/ncu_flash.txt" 2>&1
  metrics='Duration|Registers Per Thread|(Achieved|Theoretical) Occupancy|Compute \(SM\) Throughput'
  metrics+='|Memory Throughput|Warp Cycles Per Issued Instruction'
  grep -E "flash.*Context|^ +($metrics) |stalled" "$out/ncu_flash.txt" | cut -c1-160 | head -60 | tee -a "$log"
fi
save_logs
if [ "$throughput_only" = 0 ] && [ -x gpu_bundle/mpi/bin/mpirun ]; then
  echo "== 4. two ranks on the one GPU: TP, PP, DP and ZeRO-1 over NCCL (launch/gpu_check_layouts.sh)" | tee -a "$log"
  timeout 300 bash launch/gpu_check_layouts.sh >"$out/layouts.txt" 2>&1
  summary+=("$(printf '%-26s rc=%s: %s' "layouts (2 ranks)" "$?" "$(grep -m1 '^LAYOUTS' "$out/layouts.txt")")")
  cat "$out/layouts.txt" >>"$log"
fi
save_logs
{
  echo
  echo "GPU check summary:"
  printf '%s\n' "${summary[@]}"
  [ "$throughput_only" = 1 ] || grep -E '^(TRAIN20|ACTRMS)' "$out/losses.txt"
} | tee -a "$log"
save_logs
