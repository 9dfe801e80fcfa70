#!/usr/bin/env python3
"""End-to-end test of `prores sweep` (docs/sweeps.md) with the real binary: a grid of 2 tiny runs (configs/tiny.ini,
20 iterations, Pre-LN against Pre-LN + ProRes) on a generated corpus, through the `prores sweep` command (which
finds this prores through $PRORES_EXECUTABLE); both finish, results.csv holds each run's final validation
perplexity from its metrics.jsonl, the figures exist, a second sweep skips both, and one with a run's status
removed and its latest checkpoint set back to iteration 10 resumes from there (bitwise: the same final perplexity).

    python3 tests/sweep/sweep_e2e_check.py PRORES_BINARY    # exit 77 (skipped) without numpy or matplotlib
"""

import csv
import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SKIP = 77

missing = [module for module in ("numpy", "matplotlib") if importlib.util.find_spec(module) is None]
if missing:
    print(f"skip: {' and '.join(missing)} not installed (bash launch/setup.sh installs python3-matplotlib)")
    sys.exit(SKIP)

PRORES = os.path.abspath(sys.argv[1])
failures = []


def check(name, condition, detail=""):
    if not condition:
        failures.append(f"{name}{': ' + str(detail) if detail else ''}")


def corpus(path):
    words = "the a model layer residual warm up deep network trains loss falls slowly then fast norm".split()
    rng = random.Random(7)
    with open(path, "w") as f:
        for _ in range(3000):
            f.write(" ".join(rng.choice(words) for _ in range(rng.randint(4, 12))) + ".\n")


def sweep(grid, out):
    env = dict(os.environ)
    env.pop("PRORES_EXECUTABLE", None)
    return subprocess.run([PRORES, "sweep", grid, "--out", out], capture_output=True, text=True, timeout=300,
                          cwd=REPO, env=env)


def final_val_ppl(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r for r in records if "val_ppl" in r][-1]["val_ppl"]


def main():
    with tempfile.TemporaryDirectory() as root:
        text = os.path.join(root, "corpus.txt")
        corpus(text)
        grid = os.path.join(root, "grid.toml")
        with open(grid, "w") as f:
            f.write(f"""[sweep]
args = ["--config", "configs/tiny.ini", "--data-path", "{text}", "--train-iters", "20", "--eval-interval", "10",
        "--probe-interval", "10", "--log-interval", "5", "--save-iters", "10"]
seeds = [3]
[axes]
num-layers = [2]
[methods]
"Pre-LN" = {{ prores-schedule = "none" }}
"Pre-LN (ProRes)" = {{ prores-schedule = "linear", prores-warmup-steps = 10 }}
""")
        out = os.path.join(root, "sweep")
        result = sweep(grid, out)
        check("sweep exit 0", result.returncode == 0, result.stderr[-2000:])
        names = ["pre-ln_num-layers-2_seed-3", "pre-ln-prores_num-layers-2_seed-3"]
        with open(os.path.join(out, "results.csv")) as f:
            rows = {row["run"]: row for row in csv.DictReader(f)}
        check("two rows", sorted(rows) == sorted(names), sorted(rows))
        ppl = {}
        for name in names:
            run_dir = os.path.join(out, "runs", name)
            with open(os.path.join(run_dir, "status.json")) as f:
                status = json.load(f)
            check(f"{name} finished", status["status"] == "finished", status)
            check(f"{name} trained by this prores", status["argv"][0] == os.path.realpath(PRORES), status["argv"][0])
            ppl[name] = final_val_ppl(run_dir)
            row = rows.get(name, {})
            check(f"{name} final val ppl", row.get("final_val_ppl") and float(row["final_val_ppl"]) == ppl[name],
                  f"{row.get('final_val_ppl')} vs {ppl[name]}")
            check(f"{name} steps", row.get("steps") == "20", row.get("steps"))
            check(f"{name} act growth", row.get("act_norm_growth") not in (None, ""))
        for file in ("val_ppl.png", "spike_score.png"):
            check(f"{file} exists", os.path.getsize(os.path.join(out, "figures", file)) > 1000)

        result = sweep(grid, out)
        check("second sweep skips both", result.returncode == 0 and result.stderr.count("skipped (finished)") == 2,
              result.stderr[-1000:])
        # As if interrupted after iteration 10: no final status, its latest checkpoint the one of iteration 10.
        os.remove(os.path.join(out, "runs", names[1], "status.json"))
        with open(os.path.join(out, "runs", names[1], "checkpoints", "latest"), "w") as f:
            f.write("10\n")
        result = sweep(grid, out)
        check("resumed sweep exit 0", result.returncode == 0, result.stderr[-2000:])
        check("resumed from its checkpoint", f"resumed: {names[1]}" in result.stderr, result.stderr[-1000:])
        with open(os.path.join(out, "runs", names[1], "train.log")) as f:
            log = f.read()
        check("resumed at iteration 10", "at iteration 10" in log and log.count("=== sweep:") == 2, log[-1500:])
        check("resumed run: the same final perplexity", final_val_ppl(os.path.join(out, "runs", names[1]))
              == ppl[names[1]])
    for failure in failures:
        print(f"FAIL {failure}")
    print(f"{'FAILED' if failures else 'passed'}: sweep end to end ({len(failures)} failures)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
