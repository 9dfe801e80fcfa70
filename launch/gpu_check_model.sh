# Sourced by launch/gpu_check.sh (step 2) and launch/gpu_check_layouts.sh (step 4), from the repository root:
# the corpus (this repository's own text) and the small model whose 20 training iterations both compare.
# shellcheck shell=bash disable=SC2034  # corpus and model are read by the scripts that source this file
corpus=/tmp/prores_corpus.txt
cat src/*/*.h src/*/*.cpp src/*/*/*.cu docs/*.md >"$corpus"
model="--num-layers 4 --hidden-size 256 --ffn-hidden-size 688 --num-attention-heads 4 --num-query-groups 2
  --seq-length 256 --vocab-size 256 --micro-batch-size 8 --global-batch-size 16 --train-iters 20 --lr 1e-3
  --lr-warmup-iters 2 --prores-warmup-steps 40 --norm-placement sandwich --log-interval 1 --eval-interval 0"
