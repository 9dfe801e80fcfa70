#!/usr/bin/env bash
# The two-rank layout check of the GPU check (issue 6), for a machine with one GPU: tensor, pipeline and data
# parallelism (and ZeRO-1) over NCCL with two ranks sharing the GPU, each run's 20 losses against the one-rank
# run of the same model, and test_mpi_nccl's NCCL tests on two ranks. It needs gpu_bundle/mpi
# (launch/gpu_bundle.sh: prores and test_mpi_nccl built with MPI and NCCL, and a relocated Open MPI) and a
# libnccl.so.2 on the machine: NCCL_LIBRARY_DIR, else the first one found (PyTorch's, on the device tool's
# machines).
#
# Two ranks share the GPU through PRORES_SHARE_GPUS=1, and each tells NCCL it is a host of its own
# (NCCL_HOSTID), since NCCL refuses two ranks on one GPU of one host; they then talk through NCCL's socket
# transport on the loopback interface. Slow, but the same collectives, groups and device buffers as on
# several GPUs. LAYOUT_DEVICE=cpu runs the same layouts on the CPU (host MPI), to check the script and the
# relocated Open MPI on a machine without a GPU (with LAUNCH_TIMEOUT=300 on 2 cores: the default 120 s per
# launch is sized for the GPU). The summary goes to $OUT/gpu_check_layouts.txt (else /tmp)
# and ends with a table; the exit status is non-zero when a run failed or a layout left the tolerance.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
mpi=$PWD/gpu_bundle/mpi
device=${LAYOUT_DEVICE:-cuda}
log=${OUT:-/tmp}/gpu_check_layouts.txt
out=/tmp/gpu_check_layouts
rm -rf "$out" && mkdir -p "$out"
[ -x "$mpi/bin/mpirun" ] || { echo "no $mpi/bin/mpirun: run launch/gpu_bundle.sh first" | tee "$log"; exit 2; }
nccl_dir=${NCCL_LIBRARY_DIR:-}
if [ "$device" = cuda ] && [ -z "$nccl_dir" ]; then  # the pip package nvidia-nccl-cu13 beside PyTorch, else any
  nccl_dir=$(python3 -c 'import os, nvidia.nccl as m; print(os.path.join(list(m.__path__)[0], "lib"))' 2>/dev/null)
  if [ ! -e "$nccl_dir/libnccl.so.2" ]; then
    nccl=$(find /usr/local /usr/lib /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
    nccl_dir=$(dirname "${nccl:-/nonexistent/x}")
  fi
fi
export LD_LIBRARY_PATH="$mpi/lib:$PWD/gpu_bundle/lib:$nccl_dir:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export OPAL_PREFIX=$mpi PMIX_INSTALL_PREFIX=$mpi/pmix
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader,tcp OMPI_MCA_pml=ob1
export OMPI_MCA_btl_vader_single_copy_mechanism=none  # no cross-process memory calls (sandboxed kernels)
export PRORES_SHARE_GPUS=1 NCCL_SOCKET_IFNAME=lo NCCL_DEBUG=${NCCL_DEBUG:-WARN}
echo "device $device, NCCL from ${nccl_dir:-(not needed)}" | tee "$log"

# launch NAME RANKS PROGRAM ARGS...: PROGRAM on RANKS ranks, each with its own NCCL_HOSTID, output to NAME.txt,
# within LAUNCH_TIMEOUT seconds (default 120); returns its exit status (124: timed out).
launch() {
  local name=$1 ranks=$2
  shift 2
  timeout "${LAUNCH_TIMEOUT:-120}" "$mpi/bin/mpirun" -np "$ranks" --oversubscribe --bind-to none \
    bash -c 'NCCL_HOSTID=prores-layout-check-$OMPI_COMM_WORLD_RANK exec "$@"' launch "$@" >"$out/$name.txt" 2>&1
  local rc=$?
  [ $rc = 0 ] || echo "$name failed (rc $rc): $(grep -m1 -iE 'error|fail|abort' "$out/$name.txt")" | tee -a "$log"
  return $rc
}

source launch/gpu_check_model.sh  # corpus, model
# name:ranks:options (the one-rank runs are the references of the two-rank ones of the same precision and
# norm; the pre-LN pair takes the residual add in the GEMMs' epilogue, which the sandwich model never does)
runs=("one_fp32:1:" "tp2_fp32:2:--tensor-model-parallel-size 2" "pp2_fp32:2:--pipeline-model-parallel-size 2"
      "dp2_fp32:2:" "zero_dp2_fp32:2:--use-distributed-optimizer" "one_bf16:1:--bf16"
      "tp2_bf16:2:--tensor-model-parallel-size 2 --bf16" "one_pre_fp32:1:--norm-placement pre"
      "tp2_pre_fp32:2:--tensor-model-parallel-size 2 --norm-placement pre")
failed=0
for run in "${runs[@]}"; do
  IFS=: read -r name ranks options <<<"$run"
  run_model=$model
  [[ $options != *--norm-placement* ]] || run_model=${model/--norm-placement sandwich/}
  # shellcheck disable=SC2086
  launch "run_$name" "$ranks" "$mpi/bin/prores" train --data-path "$corpus" $run_model --device "$device" $options \
    --log-dir "$out/run_$name"
  rc=$?
  [ $rc = 0 ] || failed=1
  [ $rc != 124 ] || { echo "stopping: a run timed out, the later ones would too" | tee -a "$log"; break; }
done
if [ "$device" = cuda ] && [ "${rc:-0}" != 124 ]; then
  launch nccl_tests 2 "$mpi/bin/test_mpi_nccl" --gtest_color=no || failed=1
  grep -E '^\[  (PASSED|FAILED|SKIPPED) +\] [0-9]+ tests?' "$out/nccl_tests.txt" | sed 's/^/test_mpi_nccl: /' |
    tee -a "$log"
  if grep -q '^\[  SKIPPED \] NcclCommunicator' "$out/nccl_tests.txt"; then  # on a GPU, a skip is a failure
    echo "test_mpi_nccl skipped its NCCL tests: $(grep -m1 -E 'needs one GPU|failed' "$out/nccl_tests.txt")" |
      tee -a "$log"
    failed=1
  fi
fi

python3 - "$out" <<'PY' 2>&1 | tee -a "$log"
import json, sys
out = sys.argv[1]
def losses(name):
    try:
        return [json.loads(l)["loss"] for l in open(f"{out}/run_{name}/metrics.jsonl") if '"loss"' in l]
    except OSError:
        return []
# (run, reference, limit): fp32 layouts reorder only sums; bf16 rounds the bf16 activations alike.
checks = [("tp2_fp32", "one_fp32", 1e-4), ("pp2_fp32", "one_fp32", 1e-4), ("dp2_fp32", "one_fp32", 1e-4),
          ("zero_dp2_fp32", "one_fp32", 1e-4), ("tp2_bf16", "one_bf16", 2e-2), ("tp2_pre_fp32", "one_pre_fp32", 1e-4)]
ok = True
print(f"{'layout':>14} {'iters':>5} {'final loss':>11} {'reference':>11} {'worst rel. diff':>16}  limit")
for run, ref, limit in checks:
    a, b = losses(run), losses(ref)
    worst = max((abs(x - y) / abs(y) for x, y in zip(a, b)), default=float("nan"))
    good = len(a) == 20 and len(b) == 20 and worst < limit
    ok &= good
    print(f"{run:>14} {len(a):5d} {a[-1] if a else float('nan'):11.6f} {b[-1] if b else float('nan'):11.6f} "
          f"{worst:16.2e}  {limit:.0e} {'PASS' if good else 'FAIL'}")
print(f"LAYOUTS {'PASS' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
PY
[ "${PIPESTATUS[0]}" = 0 ] || failed=1
tar czf "${OUT:-/tmp}/layouts_logs.tgz" -C /tmp gpu_check_layouts
exit $failed
