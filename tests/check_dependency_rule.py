#!/usr/bin/env python3
"""The dependency rule of docs/design.md, checked on every #include of src/.

  core <- ops <- parallel <- model <- train <- eval <- serve <- cli; optim uses core, ops and parallel; data and io use core
  (and parallel for communicators); mpi.h, nccl.h and the concrete communicators' headers are included
  only in src/parallel (other folders see parallel/communicator.h).

Usage: check_dependency_rule.py [SRC_DIR]   prints one line per violation and exits 1 if there is any
       check_dependency_rule.py --self-test checks that a tree with planted violations is caught
"""
import os
import re
import sys
import tempfile

# The folders each folder of src/ may include from (itself always).
ALLOWED = {
    "core": set(),
    "ops": {"core"},
    "parallel": {"core", "ops"},
    "model": {"core", "ops", "parallel"},
    "optim": {"core", "ops", "parallel"},
    "data": {"core", "parallel"},
    "io": {"core", "parallel"},
    "train": {"core", "ops", "parallel", "model", "optim", "data", "io"},
    "eval": {"core", "ops", "parallel", "model", "optim", "data", "io", "train"},
    "serve": {"core", "ops", "parallel", "model", "optim", "data", "io", "train", "eval"},
    "cli": {"core", "ops", "parallel", "model", "optim", "data", "io", "train", "eval", "serve"},
}
# System headers only the communicators may include.
PARALLEL_ONLY = {"mpi.h", "nccl.h"}
# Our headers only src/parallel may include: the concrete communicator types.
PARALLEL_ONLY_OURS = {"parallel/mpi_communicator.h", "parallel/nccl_communicator.h",
                      "parallel/single_process_communicator.h"}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def violations(src):
    found = []
    for root, _, files in os.walk(src):
        for name in sorted(files):
            path = os.path.join(root, name)
            folder = os.path.relpath(path, src).split(os.sep)[0]
            if folder not in ALLOWED or not name.endswith((".h", ".cpp", ".cu", ".cuh")):
                continue
            with open(path, encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    header = m.group(2)
                    where = f"{os.path.relpath(path, os.path.dirname(src))}:{number}"
                    if header in PARALLEL_ONLY and folder != "parallel":
                        found.append(f"{where}: includes <{header}>, which only src/parallel may include")
                    if m.group(1) == '"' and header in PARALLEL_ONLY_OURS and folder != "parallel":
                        found.append(f'{where}: includes "{header}", a concrete communicator, which only '
                                     "src/parallel may include (use parallel/communicator.h)")
                    target = header.split("/")[0]
                    if m.group(1) == '"' and "/" in header and target in ALLOWED and target != folder \
                            and target not in ALLOWED[folder]:
                        allowed = ", ".join(sorted(ALLOWED[folder] | {folder}))
                        found.append(f'{where}: includes "{header}": {folder} may include only {allowed}')
    return found


def self_test():
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src")
        files = {
            "core/a.h": '#include "core/b.h"\n',
            "ops/good.cpp": '#include "core/a.h"\n#include "ops/x.h"\n',
            "model/bad.cpp": '#include "train/trainer.h"\n',
            "ops/mpi_use.cpp": "#include <mpi.h>\n",
            "optim/fine.cpp": '#include "parallel/communicator.h"\n',
            "train/concrete.cpp": '#include "parallel/nccl_communicator.h"\n',
        }
        for rel, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
            with open(os.path.join(src, rel), "w", encoding="utf-8") as f:
                f.write(text)
        found = violations(src)
        expected = ['src/model/bad.cpp:1: includes "train/trainer.h": model may include only core, model, ops, parallel',
                    "src/ops/mpi_use.cpp:1: includes <mpi.h>, which only src/parallel may include",
                    'src/train/concrete.cpp:1: includes "parallel/nccl_communicator.h", a concrete communicator, '
                    "which only src/parallel may include (use parallel/communicator.h)"]
        if sorted(found) != sorted(expected):
            print("self-test failed: found", found, "expected", expected)
            return 1
    print("self-test passed: the three planted violations found, nothing else")
    return 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    src = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    found = violations(os.path.normpath(src))
    for line in found:
        print(line)
    if not found:
        print(f"dependency rule: no violations in {os.path.normpath(src)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
