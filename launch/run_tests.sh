#!/usr/bin/env bash
# Builds everything (set-up included) and runs the whole GoogleTest suite through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
cd build
ctest --output-on-failure -j "$(nproc)"
