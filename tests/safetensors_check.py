#!/usr/bin/env python3
"""Cross-check of prores' safetensors files against the reference `safetensors` package.

Called by tests/test_io_safetensors.cpp only when `import safetensors.numpy` works:
  safetensors_check.py read FILE    prints one JSON object: {"metadata": {..}, "tensors": {NAME:
                                    {"dtype": numpy dtype, "shape": [..], "sum": float64 sum}}}
  safetensors_check.py write FILE   writes F32 and F16 tensors of known values for our reader
"""
import json
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file


def read(path):
    with safe_open(path, framework="numpy") as f:
        metadata = f.metadata() or {}
    tensors = {
        name: {"dtype": str(a.dtype), "shape": list(a.shape), "sum": float(np.sum(a, dtype=np.float64))}
        for name, a in load_file(path).items()
    }
    print(json.dumps({"metadata": metadata, "tensors": tensors}))


def write(path):
    tensors = {
        "a.f32": (np.arange(6, dtype=np.float32).reshape(2, 3) * 0.25 - 0.5),
        "b.f16": np.array([1.0, -2.5, 65504.0, 2.0**-24, -0.0, np.inf], dtype=np.float16),
        "c.scalar": np.array(3.5, dtype=np.float32),
        "d.empty": np.zeros((0, 4), dtype=np.float32),
    }
    save_file(tensors, path, metadata={"origin": "python"})


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("read", "write"):
        sys.exit(__doc__)
    (read if sys.argv[1] == "read" else write)(sys.argv[2])
