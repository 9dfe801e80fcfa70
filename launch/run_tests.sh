#!/usr/bin/env bash
# Builds everything (set-up included) and runs the GoogleTest suite through ctest: every tier by default, or
# with --fast only the unit tier (ctest label `unit`; the others are mpi, e2e, cuda and interop, see
# tests/CMakeLists.txt), well under a minute once built.
set -euo pipefail
cd "$(dirname "$0")/.."
labels=()
case "${1:-}" in
  "") ;;
  --fast) labels=(-L '^unit$') ;;
  *) echo "usage: bash launch/run_tests.sh [--fast]" >&2; exit 2 ;;
esac
bash launch/setup.sh
cd build
ctest --output-on-failure -j "$(nproc)" "${labels[@]}"
