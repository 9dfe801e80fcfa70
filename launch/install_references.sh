#!/usr/bin/env bash
# Installs the heavy reference implementations the agreement tests compare against (docs/eval.md, "Agreement
# with lm-evaluation-harness and transformers"): PyTorch, transformers and lm-evaluation-harness, pinned, in
# a virtual environment of their own over Debian's Python, and tensorboard, whose event reader checks
# `prores report --tensorboard` (tests/report/tensorboard_check.py). Optional: the README's two commands never
# run it, and without it tests/test_interop_lm_eval.cpp and ReportTensorBoard's read-back skip. Needs PyPI
# (several GB of wheels with PyPI's default, CUDA-enabled torch; the tests run it on the CPU). Idempotent: a venv
# that already imports the pinned versions is left alone, and one that does not gets them installed into it (pip
# keeps what already matches) rather than being made anew.
#
#   bash launch/install_references.sh          # → ${PRORES_REFERENCE_VENV:-$HOME/.cache/prores/reference-venv}
#
# The tests find the interpreter as $PRORES_REFERENCE_PYTHON when set, else that venv's bin/python.
set -euo pipefail

venv="${PRORES_REFERENCE_VENV:-$HOME/.cache/prores/reference-venv}"
# The versions the agreement was measured with. lm_eval 0.4.13's HFLM and local-completions models and
# transformers 4.57.1's LlamaForCausalLM / LlamaTokenizer (SentencePiece; protobuf for the fast converter);
# tensorboard 2.21.0's EventAccumulator.
pins=(torch==2.15.0 transformers==4.57.1 "lm_eval[hf,api]==0.4.13" sentencepiece==0.2.3 protobuf==7.36.2
      tensorboard==2.21.0)

python="$venv/bin/python"
check='import torch, transformers, lm_eval, sentencepiece, sentencepiece.sentencepiece_model_pb2, accelerate, tenacity, aiohttp, requests
import tensorboard.backend.event_processing.event_accumulator
from importlib.metadata import version
want = {"torch": "2.15.0", "transformers": "4.57.1", "lm_eval": "0.4.13", "sentencepiece": "0.2.3", "protobuf": "7.36.2",
        "tensorboard": "2.21.0"}
bad = [f"{k} {version(k)} (want {v})" for k, v in want.items() if version(k).split("+")[0] != v]
raise SystemExit("; ".join(bad) if bad else 0)'
if [ -x "$python" ] && "$python" -c "$check" 2>/dev/null; then
  echo "install_references: $venv already has ${pins[*]}"
  exit 0
fi

if "$python" -c 'import sys' 2>/dev/null; then
  echo "install_references: installing ${pins[*]} into $venv"
else
  echo "install_references: creating $venv"
  mkdir -p "$(dirname "$venv")"
  /usr/bin/python3 -m venv --clear "$venv"
  "$python" -m pip install -q --disable-pip-version-check --upgrade pip
fi
"$python" -m pip install -q --disable-pip-version-check "${pins[@]}"
"$python" -c "$check"
"$python" -c 'import sys
from importlib.metadata import version
print("install_references:", sys.executable + ":", ", ".join(p + " " + version(p) for p in ("torch", "transformers", "lm_eval")))'
echo "install_references: the interop tests use it (or set PRORES_REFERENCE_PYTHON to another interpreter)"
