"""Cross-checks our indexed datasets against Megatron-LM's own reader and writer (megatron-core).

Usage: python3 tests/megatron_interop_check.py OURS_PREFIX THEIRS_PREFIX
Reads OURS_PREFIX.{bin,idx} with megatron.core's IndexedDataset and writes THEIRS_PREFIX.{bin,idx} with
its IndexedDatasetBuilder (50 seeded uint16 documents). Prints, one per line:
  ours <sequences> <documents> <sum of all tokens>
  theirs <sequences> <documents> <sum of all tokens>
Called by tests/test_interop_megatron.cpp when megatron-core (and torch) are importable.
"""
import sys

import numpy as np
import torch
from megatron.core.datasets.indexed_dataset import IndexedDataset, IndexedDatasetBuilder


def summary(ds):
    total = sum(int(ds[i].astype(np.int64).sum()) for i in range(len(ds)))
    return len(ds), len(ds.document_indices) - 1, total


def main():
    ours, theirs = sys.argv[1], sys.argv[2]
    print("ours %d %d %d" % summary(IndexedDataset(ours)))
    builder = IndexedDatasetBuilder(theirs + ".bin", dtype=np.uint16)
    rng = np.random.default_rng(7)
    for _ in range(50):
        builder.add_item(torch.tensor(rng.integers(0, 4096, size=int(rng.integers(1, 60)))))
        builder.end_document()
    builder.finalize(theirs + ".idx")
    print("theirs %d %d %d" % summary(IndexedDataset(theirs)))


if __name__ == "__main__":
    main()
