#!/usr/bin/env python3
"""Test of `prores report --tensorboard` (docs/diagnostics.md, "Reports"): the synthetic runs' scalars are exported,
read back with tensorboard's own EventAccumulator (tensorboard_events_dump.py, under the reference interpreter of
launch/install_references.sh) and compared with every scalar of their metrics.jsonl as the reference reads them
(float32, as TensorBoard stores them). Without tensorboardX the export must fail in one line naming it.

    python3 tests/report/tensorboard_check.py PRORES_BINARY
    # exit 77 (skipped) without tensorboardX here or tensorboard in the reference interpreter
"""

import glob
import importlib.util
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference  # noqa: E402
import synthetic_runs  # noqa: E402

PRORES = sys.argv[1]


def reference_python():
    """$PRORES_REFERENCE_PYTHON, else the reference venv's python (tests/test_util.h, reference_python())."""
    if os.environ.get("PRORES_REFERENCE_PYTHON"):
        return os.environ["PRORES_REFERENCE_PYTHON"]
    venv = os.environ.get("PRORES_REFERENCE_VENV") or os.path.expanduser("~/.cache/prores/reference-venv")
    return os.path.join(venv, "bin", "python")


def float32(value):
    return math.nan if value is None else struct.unpack("f", struct.pack("f", value))[0]


def expected_scalars(directory):
    """{tag: [[step, value], ...]} of every scalar of the run's metrics.jsonl, as the export names them."""
    records, _ = reference.read_records(os.path.join(directory, "metrics.jsonl"))
    scalars = {}
    for kind in ("train", "validation", "tasks", "probe"):
        for iteration, record in sorted(reference.latest(records, kind).items()):
            for key, value in record.items():
                if key in ("iter", "step_loss", "step_grad_norm"):
                    continue
                values = value if isinstance(value, list) else [value]
                for layer, v in enumerate(values, 1):
                    tag = f"{key}/layer_{layer:02d}" if isinstance(value, list) else key
                    scalars.setdefault(tag, []).append([iteration, float32(v)])
    for array_key, tag in (("step_loss", "loss_per_step"), ("step_grad_norm", "grad_norm_per_step")):
        steps = reference.per_step(records, array_key, None)
        scalars[tag] = [[iteration, float32(steps[iteration])] for iteration in sorted(steps)]
    return scalars


def same(got, want):
    return len(got) == len(want) and all(
        gs == ws and (gv == wv or (math.isnan(gv) and math.isnan(wv))) for (gs, gv), (ws, wv) in zip(got, want))


def main():
    with tempfile.TemporaryDirectory() as root:
        runs = synthetic_runs.write_all(root)
        logdir = os.path.join(root, "tensorboard")
        args = [PRORES, "report", runs["full"], runs["small"], "--out", os.path.join(root, "report"),
                "--tensorboard", logdir]
        if importlib.util.find_spec("tensorboardX") is None:
            result = subprocess.run(args, capture_output=True, text=True, timeout=300)
            errors = [line for line in result.stderr.splitlines() if not line.startswith("report: ")]
            if result.returncode != 1 or len(errors) != 1 or "tensorboardX" not in errors[0]:
                print(f"without tensorboardX: want one line naming it and exit 1, got {result.returncode}: "
                      f"{result.stderr!r}")
                return 1
            print("skip: tensorboardX is not installed (bash launch/setup.sh installs it into build/python)")
            return reference.SKIP
        for attempt in range(2):  # a second export replaces the first one's event files
            result = subprocess.run(args, capture_output=True, text=True, timeout=300)
            if result.returncode != 0:
                print(f"export failed: {result.stderr}")
                return 1
        event_files = {run: glob.glob(os.path.join(logdir, run, "events.out.tfevents.*")) for run in ("full", "small")}
        if any(len(files) != 1 for files in event_files.values()):
            print(f"want one event file per run, got {event_files}")
            return 1
        python = reference_python()
        if subprocess.run([python, "-c", "import tensorboard"], capture_output=True).returncode != 0:
            print(f"skip: no tensorboard in {python} to read the events back (bash launch/install_references.sh)")
            return reference.SKIP
        dump = subprocess.run([python, os.path.join(HERE, "tensorboard_events_dump.py"), logdir], capture_output=True,
                              text=True, timeout=300)
        if dump.returncode != 0:
            print(f"reading the events failed: {dump.stderr}")
            return 1
        read_back = json.loads(dump.stdout)
        failures = []
        for name in ("full", "small"):
            want, got = expected_scalars(runs[name]), read_back.get(name, {})
            if sorted(got) != sorted(want):
                failures.append(f"{name}: tags {sorted(got)}, want {sorted(want)}")
            failures += [f"{name} {tag}: {got.get(tag)} vs {want[tag]}" for tag in want
                         if tag in got and not same(got[tag], want[tag])]
        if failures:
            print("\n".join(failures))
            return 1
    print("tensorboard export: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
