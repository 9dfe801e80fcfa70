#!/usr/bin/env bash
# The main job on the built-in default: set-up and build, the fortunes corpus, then ProRes training of
# the quick-start model (configs/quickstart.ini) on this machine's CPU cores. Extra arguments are passed
# to `prores train` (e.g. --train-iters 100 or --norm-placement post).
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh --target prores
bash launch/prepare_corpus.sh
exec ./build/prores train --config configs/quickstart.ini "$@"
