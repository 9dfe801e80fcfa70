#!/usr/bin/env bash
# Launches NP ranks of a program with Open MPI's mpirun on this machine (or on the hosts given through
# MPIRUN_ARGS), with the settings a ProRes run wants:
#
#   launch/mpirun.sh NP PROGRAM [ARGS...]
#   launch/mpirun.sh 4 prores train --config configs/tiny.ini --tensor-model-parallel-size 2
#   MPIRUN_ARGS="--host node1:8,node2:8" launch/mpirun.sh 16 prores train ...
#
# - --oversubscribe: more ranks than cores is allowed (tests and small runs on a laptop);
# - --bind-to none: each rank runs OpenMP threads, which a per-core binding would squeeze onto one core;
# - --allow-run-as-root, only when run as root (containers);
# - OMP_NUM_THREADS = max(1, nproc / NP) unless already set, so the ranks share the cores instead of
#   each starting one thread per core; it is exported to every rank (-x);
# - MPIRUN_ARGS: any further mpirun options (hosts, MCA parameters), split on whitespace.
# PROGRAM `prores` resolves to this checkout's build/prores when no prores is on PATH.
set -euo pipefail

if (($# < 2)) || ! [[ "$1" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 NP PROGRAM [ARGS...]   (NP: number of ranks, a positive integer)" >&2
  exit 2
fi
np=$1
shift

program=$1
shift
repo_root=$(cd "$(dirname "$0")/.." && pwd)
if [[ "$program" == prores ]] && ! command -v prores >/dev/null 2>&1; then
  program="$repo_root/build/prores"
  [[ -x "$program" ]] || { echo "$0: $program not found: build it first (bash launch/setup.sh)" >&2; exit 2; }
fi

if [[ -z "${OMP_NUM_THREADS:-}" ]]; then
  threads=$(($(nproc) / np))
  OMP_NUM_THREADS=$((threads > 1 ? threads : 1))
fi
export OMP_NUM_THREADS

mpi_args=(-np "$np" --oversubscribe --bind-to none -x OMP_NUM_THREADS)
if [[ "$(id -u)" -eq 0 ]]; then
  mpi_args+=(--allow-run-as-root)
fi
read -r -a extra_args <<<"${MPIRUN_ARGS:-}"

exec mpirun "${mpi_args[@]}" "${extra_args[@]}" "$program" "$@"
