#!/usr/bin/env bash
# The main job on the built-in default, each step skipped when its output already exists:
#   1. set-up and Release build (launch/setup.sh)
#   2. the fortunes corpus (launch/prepare_corpus.sh)
#   3. a SentencePiece BPE tokenizer of 4096 pieces trained on it (prores data train-tokenizer)
#   4. the corpus tokenized into a Megatron indexed dataset (prores data preprocess)
#   5. ProRes training of configs/quickstart.ini on 4 MPI ranks: TP = 2 × PP = 2 (launch/mpirun.sh), saving its
#      checkpoint to runs/quickstart/checkpoints
#   6. the layerwise similarity of its checkpoints to the last one (prores analyze) and the report of the run
#      (prores report: runs/quickstart/report/index.html)
#   7. one short sample from the trained model (prores generate, greedy)
# Extra arguments go to `prores train` (e.g. --train-iters 100 or --norm-placement post).
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh --target prores
bash launch/prepare_corpus.sh
tokenizer=data/fortunes_bpe4k
if [ ! -s "$tokenizer.model" ]; then
  ./build/prores data train-tokenizer --input data/fortunes.txt --vocab-size 4096 --model-prefix "$tokenizer"
fi
if [ ! -s "$tokenizer.idx" ] || [ ! -s "$tokenizer.bin" ]; then
  ./build/prores data preprocess --input data/fortunes.txt --tokenizer-model "$tokenizer.model" \
    --output-prefix "$tokenizer"
fi
bash launch/mpirun.sh 4 prores train --config configs/quickstart.ini "$@"
bash launch/mpirun.sh 4 prores analyze --config configs/quickstart.ini --load runs/quickstart/checkpoints "$@"
./build/prores report runs/quickstart --out runs/quickstart/report
echo "sample (prores generate --load runs/quickstart/checkpoints, greedy):"
./build/prores generate --load runs/quickstart/checkpoints --prompt "The secret of life is" --max-new-tokens 32
