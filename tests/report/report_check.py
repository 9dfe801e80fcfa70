#!/usr/bin/env python3
"""Test of `prores report` (docs/diagnostics.md, "Reports") on synthetic runs (synthetic_runs.py): every figure
index.html names exists and is not blank (pixel variance), summary.csv and summary.md hold the numbers the
reference (reference.py) computes from the same metrics.jsonl, the page notes what was skipped or missing and
opens offline, and bad input is one line on stderr with exit status 1.

    python3 tests/report/report_check.py PRORES_BINARY     # exit 77 (skipped) without numpy or matplotlib
"""

import csv
import importlib.util
import math
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference  # noqa: E402
import synthetic_runs  # noqa: E402

missing = [module for module in ("numpy", "matplotlib") if importlib.util.find_spec(module) is None]
if missing:
    print(f"skip: {' and '.join(missing)} not installed (bash launch/setup.sh installs python3-matplotlib)")
    sys.exit(reference.SKIP)
import matplotlib.image  # noqa: E402

PRORES = sys.argv[1]
failures = []


def check(name, condition, detail=""):
    if not condition:
        failures.append(f"{name}{': ' + detail if detail else ''}")


def report(*args):
    return subprocess.run([PRORES, "report", *args], capture_output=True, text=True, timeout=300)


def expected_row(directory, label):
    """The summary row of a run, computed by the reference from its metrics.jsonl."""
    records, _ = reference.read_records(os.path.join(directory, "metrics.jsonl"))
    train = reference.latest(records, "train")
    validation = reference.latest(records, "validation")
    probe = reference.latest(records, "probe")
    tasks = reference.latest(records, "tasks")
    last = max(train)
    row = {"run": label, "layers": len(train[last]["alpha"]), "steps": last, "final_train_loss": train[last]["loss"],
           "loss_spike_score_pct": reference.spike_score(reference.per_step(records, "step_loss", "loss"))[0],
           "grad_norm_spike_score_pct":
               reference.spike_score(reference.per_step(records, "step_grad_norm", "grad_norm"))[0]}
    if validation:
        row["final_val_ppl"] = validation[max(validation)]["val_ppl"]
        row["best_val_ppl"] = min(r["val_ppl"] for r in validation.values())
    if probe:
        act_norm = probe[max(probe)]["probe/act_norm"]
        row["act_norm_growth"] = act_norm[-1] / act_norm[0]
    if tasks:
        row.update({k: v for k, v in tasks[max(tasks)].items() if k.startswith("tasks/")})
    return row


def close(got, want, rel):
    return math.isclose(float(got), float(want), rel_tol=rel, abs_tol=rel * 1e-3)


def check_table(out, expected_rows):
    with open(os.path.join(out, "summary.csv")) as f:
        csv_rows = list(csv.DictReader(f))
    check("summary.csv rows", [r["run"] for r in csv_rows] == [r["run"] for r in expected_rows])
    with open(os.path.join(out, "summary.md")) as f:
        md_lines = [line.strip().strip("|").split("|") for line in f if line.startswith("|")]
    md_header = [cell.strip() for cell in md_lines[0]]
    md_rows = [[cell.strip() for cell in line] for line in md_lines[2:]]
    columns = sorted({key for row in expected_rows for key in row})
    check("summary.csv columns", set(csv_rows[0]) == set(columns), f"{sorted(csv_rows[0])} vs {columns}")
    check("summary.md columns", len(md_header) == len(columns), f"{md_header}")
    for csv_row, md_row, want in zip(csv_rows, md_rows, expected_rows):
        for key in columns:
            name = f"{want['run']} {key}"
            if key not in want or want[key] is None:
                check(f"summary.csv {name} empty", csv_row[key] == "", csv_row[key])
            elif isinstance(want[key], str):
                check(f"summary.csv {name}", csv_row[key] == want[key], csv_row[key])
            else:
                check(f"summary.csv {name}", close(csv_row[key], want[key], 1e-12), f"{csv_row[key]} vs {want[key]}")
        md_numbers = [float(cell) for cell in md_row[1:] if cell not in ("–", "")]
        want_numbers = [want[key] for key in [c for c in csv_rows[0]][1:] if want.get(key) is not None]
        check(f"summary.md {want['run']} numbers", len(md_numbers) == len(want_numbers) and
              all(close(g, w, 1e-5) for g, w in zip(md_numbers, want_numbers)), f"{md_row} vs {want_numbers}")


def check_figures(out, page, wanted):
    sources = re.findall(r'<img src="([^"]+)"', page)
    check("figures on the page", sorted(sources) == sorted(wanted), f"{sorted(sources)}")
    for source in sources:
        path = os.path.join(out, source)
        if not os.path.isfile(path):
            failures.append(f"{source}: missing")
            continue
        pixels = matplotlib.image.imread(path)
        check(f"{source} not blank", pixels.var() > 0)


def main():
    with tempfile.TemporaryDirectory() as root:
        runs = synthetic_runs.write_all(root)
        out = os.path.join(root, "report")
        result = report(runs["full"], runs["small"], "--out", out, "--labels", "full run,small")
        check("report exit status", result.returncode == 0, result.stderr)
        check("progress on stderr", "report: read run 2/2" in result.stderr, result.stderr)
        with open(os.path.join(out, "index.html")) as f:
            page = f.read()
        check_figures(out, page, ["loss.png", "val_loss.png", "grad_norm.png", "lr.png", "full_run_alpha.png",
                                  "full_run_act_norm.png", "full_run_act_norm_profile.png",
                                  "full_run_branch_norms.png", "full_run_similarity.png", "small_alpha.png"])
        full, small = expected_row(runs["full"], "full run"), expected_row(runs["small"], "small")
        check("the full run's spikes are counted", full["loss_spike_score_pct"] == 100 * 2 / 320 and
              full["grad_norm_spike_score_pct"] == 100 / 320, f"{full}")
        check_table(out, [full, small])
        for note in (f"skipped 3 malformed lines in {runs['full']}/metrics.jsonl",
                     f"skipped 1 malformed line in {runs['full']}/similarity.jsonl",
                     "different layer counts (2, 4)", "small: no probe records", "small: no similarity.jsonl"):
            check(f"note '{note}'", note in page)
        check("the page opens offline", "<script" not in page and "http" not in page)

        out = os.path.join(root, "report_logged")
        result = report(runs["logged"], "--out", out, "--log-x", "--profile-steps", "0,100")
        check("logged-points report exit status", result.returncode == 0, result.stderr)
        with open(os.path.join(out, "index.html")) as f:
            page = f.read()
        check_figures(out, page, ["loss.png", "grad_norm.png", "lr.png", "logged_alpha.png"])
        check_table(out, [expected_row(runs["logged"], "logged")])
        for note in ("the training loss series (and its spike score) uses logged points",
                     "no run has val_loss values", "no run has validation records", "no run has probe records"):
            check(f"note '{note}'", note in page)

        empty = os.path.join(root, "empty")
        os.makedirs(empty)
        garbage = os.path.join(root, "garbage")
        os.makedirs(garbage)
        with open(os.path.join(garbage, "metrics.jsonl"), "w") as f:
            f.write('{"iter": 1, "loss"\nnull\n')
        for args, message in (
                ([empty, "--out", out], f"prores report: {empty}: no metrics.jsonl"),
                ([runs["small"], os.path.join(root, "missing"), "--out", out],
                 f"prores report: {root}/missing: no metrics.jsonl"),
                ([garbage, "--out", out], f"prores report: {garbage}: metrics.jsonl has no readable record"),
                ([runs["small"], "--out", out, "--labels", "a,b"], "prores report: --labels has 2 labels for 1 runs"),
                ([runs["small"], "--out", out, "--bogus"], "prores report: unrecognized arguments: --bogus"),
                ([runs["small"], "--out", out, "--spike-phase", "0.9,0.1"],
                 "prores report: spike phase must be BEGIN,END with 0 <= BEGIN < END <= 1, not 0.9,0.1")):
            result = report(*args)
            error_lines = [line for line in result.stderr.splitlines() if not line.startswith("report: ")]
            check(f"'{message}': exit status 1", result.returncode == 1, f"{result.returncode} {result.stderr}")
            check(f"'{message}': the one line", error_lines == [message], f"{result.stderr!r}")

    if failures:
        print("\n".join(failures))
        return 1
    print("report: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
