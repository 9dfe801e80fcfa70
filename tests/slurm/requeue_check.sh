#!/usr/bin/env bash
# launch/slurm.sbatch through a preemption cycle without Slurm: srun, scancel and scontrol are shims (srun runs
# mpirun, scancel signals the job's ranks, scontrol records the requeue). The batch shell gets the time-limit
# notice (SIGUSR1) mid-run; every rank must save and exit 0, the script must requeue the job, and the requeued
# job (the same script, same job ID, no --load) must resume from SAVE_DIR and repeat an uninterrupted job's
# losses bit for bit. Exits 77 (skipped) without mpirun.
#
#   bash tests/slurm/requeue_check.sh PRORES_BINARY SOURCE_DIR
set -euo pipefail

prores=$1
source_dir=$2
command -v mpirun >/dev/null || { echo "skipped: no mpirun"; exit 77; }
work=$(mktemp -d /tmp/prores_slurm.XXXXXX)
trap 'pkill -KILL -f "^\./build/prores train .*$work" 2>/dev/null || true; [[ -n "${KEEP:-}" ]] || rm -rf "$work"' EXIT
cd "$work"
mkdir bin
ln -s "$(dirname "$prores")" build

cat > bin/srun <<'SHIM'
#!/usr/bin/env bash
# srun shim: the job's ranks on this machine through mpirun (Slurm-only options dropped).
args=()
for word in "$@"; do
  case "$word" in --mpi=* | --kill-on-bad-exit=*) ;; *) args+=("$word") ;; esac
done
exec mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 -x OMP_NUM_THREADS "${args[@]}"
SHIM
cat > bin/scancel <<'SHIM'
#!/usr/bin/env bash
# scancel shim: `scancel --signal=SIG JOBID` signals the ranks (not mpirun, not the batch shell).
[[ "$1" == --signal=* ]] || { echo "scancel shim: unexpected arguments: $*" >&2; exit 1; }
pkill "-${1#--signal=}" -f "^\./build/prores train .*--save $SAVE_DIR"
SHIM
cat > bin/scontrol <<'SHIM'
#!/usr/bin/env bash
# scontrol shim: records `scontrol requeue JOBID`.
echo "$*" >> "$SHIM_LOG"
SHIM
chmod +x bin/*
export PATH="$work/bin:$PATH" SHIM_LOG="$work/scontrol.log" SLURM_JOB_NAME=requeue SLURM_CPUS_PER_TASK=1
touch "$SHIM_LOG"

# A corpus of pseudo-words (documents of 6 lines), a 320-piece BPE and its indexed dataset.
awk 'BEGIN { srand(7); for (i = 0; i < 400; i++) w[i] = sprintf("%c%c%c%c", 97 + int(rand() * 26), 97 + int(rand() * 6),
     97 + int(rand() * 26), 97 + int(rand() * 4));
     for (l = 0; l < 6000; l++) { n = 3 + int(rand() * 9); s = w[int(rand() * rand() * 400)];
       for (j = 1; j < n; j++) s = s " " w[int(rand() * rand() * 400)]; print s "."; if (l % 6 == 5) print "" } }' > corpus.txt
"$prores" data train-tokenizer --input corpus.txt --vocab-size 320 --model-prefix tok > /dev/null 2>&1
"$prores" data preprocess --input corpus.txt --tokenizer-model tok.model --output-prefix corpus > /dev/null 2>&1

iters=400
job_command() {  # job ID: sets `job` to the sbatch command line with its environment (`env` execs the batch shell,
                 # so that $! of a job started in the background is the shell that gets the notice)
  job=(env SLURM_JOB_ID="$1" SAVE_DIR="$work/job$1" CONFIG="$source_dir/configs/tiny.ini" DATA_PATH=corpus
       TOKENIZER=tok.model TP=1 PP=2 DEVICE_ARGS="--device cpu"
       bash "$source_dir/launch/slurm.sbatch" --train-iters "$iters" --log-interval 1 --eval-interval 0
       --lr-warmup-iters 2 --global-batch-size 8 --micro-batch-size 2 --save-interval 0)
}
fail() { echo "FAIL: $*" >&2; exit 1; }

job_command 1
"${job[@]}" > uninterrupted.log 2>&1 || fail "the uninterrupted job failed: $(tail -3 uninterrupted.log)"

export SAVE_DIR="$work/job2"  # for the scancel shim
job_command 2
"${job[@]}" > first.log 2>&1 &
batch=$!
for _ in $(seq 3000); do
  [[ -s job2/metrics.jsonl ]] && (($(grep -c '"loss"' job2/metrics.jsonl) >= 3)) && break
  sleep 0.01
done
kill -USR1 "$batch"
status=0
wait "$batch" || status=$?
((status == 0)) || fail "the signalled job exited $status: $(tail -3 first.log)"
grep -qx "requeue 2" "$SHIM_LOG" || fail "the job was not requeued (scontrol calls: $(cat "$SHIM_LOG"))"
stopped_at=$(cat job2/latest)
((stopped_at < iters)) || fail "the job ended (iteration $stopped_at) before the signal arrived"
grep -q "(stop requested)" first.log || fail "no stop requested in the job's log"

: > "$SHIM_LOG"
"${job[@]}" > requeued.log 2>&1 || fail "the requeued job failed: $(tail -3 requeued.log)"
[[ ! -s "$SHIM_LOG" ]] || fail "the finished job requeued itself: $(cat "$SHIM_LOG")"
grep -q -- "--load defaults to --save $work/job2" requeued.log || fail "the requeued job did not load --save"
grep -q "at iteration $stopped_at" requeued.log || fail "the requeued job did not resume at $stopped_at"

python3 - job1/metrics.jsonl job2/metrics.jsonl "$iters" <<'PY'
import json, sys
def losses(path):  # iteration -> loss text of the last train record (a resumed run repeats none)
    out = {}
    for line in open(path):
        record = json.loads(line)
        if "loss" in record and "iter" in record:
            out[record["iter"]] = record["loss"]
    return out
want, got, iters = losses(sys.argv[1]), losses(sys.argv[2]), int(sys.argv[3])
bad = [i for i in range(1, iters + 1) if got.get(i) != want.get(i)]
if bad:
    sys.exit(f"FAIL: {len(bad)} iterations differ, first {bad[0]}: {got.get(bad[0])} against {want.get(bad[0])}")
PY
echo "slurm requeue cycle: stopped at iteration $stopped_at of $iters, requeued, resumed, $iters losses bitwise equal"
