#!/usr/bin/env python3
"""Test of `prores sweep` (python/prores_tools/sweep*.py; docs/sweeps.md) with a fake prores (fake_prores.py) that
lists options, records its invocations and writes deterministic metrics in no time: grid expansion (product x
methods x seeds, per-method overrides, rules, switches, stable and unique names), refusal of unknown options and
bad grids before any run, statuses (finished, failed with its log tail, diverged by message and by perplexity),
resume (finished skipped, interrupted relaunched with --load, failed only with --retry-failed), SIGTERM leaving
resumable runs, OMP_NUM_THREADS per job, results tables equal to values recomputed from the runs' metrics.jsonl
(tests/report/reference.py), and non-blank figures.

    python3 tests/sweep/sweep_check.py        # exit 77 (skipped) without numpy or matplotlib
"""

import csv
import importlib.util
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "report"))
sys.path.insert(0, os.path.join(REPO, "python"))
import reference  # noqa: E402

missing = [module for module in ("numpy", "matplotlib") if importlib.util.find_spec(module) is None]
if missing:
    print(f"skip: {' and '.join(missing)} not installed (bash launch/setup.sh installs python3-matplotlib)")
    sys.exit(reference.SKIP)
import matplotlib.image  # noqa: E402

import fake_prores  # noqa: E402  (HERE is on sys.path as the script's directory)
from prores_tools.sweep_grid import GridError, TrainOptions, parse_grid  # noqa: E402

failures = []


def check(name, condition, detail=""):
    if not condition:
        failures.append(f"{name}{': ' + str(detail) if detail else ''}")


class Fake:
    """A prores executable (a shell script running fake_prores.py) and its invocation log."""

    def __init__(self, root):
        self.path = os.path.join(root, "prores")
        self.log = os.path.join(root, "invocations.jsonl")
        with open(self.path, "w") as f:
            f.write(f'#!/bin/sh\nexec "{sys.executable}" "{os.path.join(HERE, "fake_prores.py")}" "$@"\n')
        os.chmod(self.path, 0o755)

    def invocations(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(line) for line in f]

    def trains(self):
        return [i for i in self.invocations() if "--help" not in i["argv"]]

    def clear(self):
        if os.path.exists(self.log):
            os.remove(self.log)


def sweep_command(fake, grid, out, *extra):
    return [sys.executable, "-m", "prores_tools.sweep", grid, "--out", out, "--prores", fake.path, *extra]


def environment(fake):
    return dict(os.environ, PYTHONPATH=os.path.join(REPO, "python"), FAKE_PRORES_LOG=fake.log)


def sweep(fake, grid, out, *extra):
    return subprocess.run(sweep_command(fake, grid, out, *extra), capture_output=True, text=True, timeout=300,
                          env=environment(fake), cwd=REPO)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


FAKE_OPTIONS = TrainOptions.parse_help(fake_prores.HELP)

BASE = '[sweep]\nargs = ["--config", "configs/tiny.ini", "--train-iters", "40"]\n'


def check_help_parsing():
    check("help: names", {"num-layers", "lr", "layernorm-scaling", "use-distributed-optimizer", "prores-schedule",
                          "fake-behavior"} <= FAKE_OPTIONS.names, sorted(FAKE_OPTIONS.names))
    check("help: no help", "help" not in FAKE_OPTIONS.names)
    check("help: switches", FAKE_OPTIONS.switches == {"layernorm-scaling", "use-distributed-optimizer"},
          sorted(FAKE_OPTIONS.switches))


def check_expansion(root):
    path = write(os.path.join(root, "expand.toml"), BASE + """seeds = [1, 2]
[axes]
num-layers = [2, 4]
lr = [1e-3, 3e-3]
[methods]
"Pre-LN" = { prores-schedule = "none" }
"Pre-LN (ProRes)" = { prores-schedule = "linear" }
"LNS" = { layernorm-scaling = true, lr = 5e-4 }
"Off" = { layernorm-scaling = false }
"One seed" = { prores-schedule = "equal", seeds = [2] }
[[rules]]
when = { num-layers = 4 }
set = { prores-steps-per-layer = 500 }
[[rules]]
when = { num-layers = [4], method = "Pre-LN (ProRes)" }
set = { prores-steps-per-layer = 250 }
""")
    grid = parse_grid(path, FAKE_OPTIONS)
    runs = grid.runs
    check("expansion: 4 methods x 2 x 2 x 2 seeds, 1 method x 2 x 2 x its 1 seed", len(runs) == 36, len(runs))
    names = [run.name for run in runs]
    check("expansion: unique names", len(set(names)) == len(names))
    check("expansion: order and names", names[:5] == [
        "pre-ln_num-layers-2_lr-0.001_seed-1", "pre-ln_num-layers-2_lr-0.001_seed-2",
        "pre-ln_num-layers-2_lr-0.003_seed-1", "pre-ln_num-layers-2_lr-0.003_seed-2",
        "pre-ln_num-layers-4_lr-0.001_seed-1"], names[:5])
    check("expansion: stable names", [r.name for r in parse_grid(path, FAKE_OPTIONS).runs] == names)
    by_name = {run.name: run for run in runs}
    check("expansion: method slug", "pre-ln-prores_num-layers-4_lr-0.003_seed-2" in by_name, names)
    run = by_name["pre-ln-prores_num-layers-4_lr-0.003_seed-2"]
    check("expansion: args", run.args == ["--config", "configs/tiny.ini", "--train-iters", "40", "--num-layers", "4",
                                          "--lr", "0.003", "--prores-schedule", "linear",
                                          "--prores-steps-per-layer", "250"], run.args)
    check("expansion: first rule", by_name["pre-ln_num-layers-4_lr-0.001_seed-1"].options.get(
        "prores-steps-per-layer") == 500)
    check("expansion: no rule at 2 layers", "prores-steps-per-layer" not in by_name[
        "pre-ln_num-layers-2_lr-0.001_seed-1"].options)
    lns = by_name["lns_num-layers-2_lr-0.003_seed-1"]
    check("expansion: method overrides axis", lns.options["lr"] == 5e-4 and "--lr" in lns.args and
          lns.args[lns.args.index("--lr") + 1] == "0.0005", lns.args)
    check("expansion: switch true is the bare flag", "--layernorm-scaling" in lns.args and
          (lns.args + ["--"])[lns.args.index("--layernorm-scaling") + 1].startswith("--"), lns.args)
    check("expansion: switch false is left out", "--layernorm-scaling" not in by_name[
        "off_num-layers-2_lr-0.001_seed-1"].args)
    check("expansion: seeds", [r.seed for r in runs[:2]] == [1, 2])
    one_seed = [r for r in runs if r.method == "One seed"]
    check("expansion: a method's own seeds", [r.seed for r in one_seed] == [2] * 4 and
          "--seeds" not in one_seed[0].args and one_seed[0].name == "one-seed_num-layers-2_lr-0.001_seed-2",
          [(r.name, r.args) for r in one_seed])
    check("expansion: x axis", grid.x_axis == "num-layers")

    no_methods = parse_grid(write(os.path.join(root, "plain.toml"), BASE + '[axes]\nnorm-placement = ["pre", '
                                                                            '"post"]\n'), FAKE_OPTIONS)
    check("expansion: no methods, no seeds", [r.name for r in no_methods.runs] == [
        "norm-placement-pre", "norm-placement-post"], [r.name for r in no_methods.runs])
    check("expansion: first axis as x", no_methods.x_axis == "norm-placement")


def check_refusals(root, fake):
    cases = {
        "unknown axis": ("[axes]\nnum-layer = [2, 4]\n", "unknown option 'num-layer'"),
        "unknown in method": ('[methods]\n"A" = { prores-shedule = "none" }\n', "unknown option 'prores-shedule'"),
        "unknown in args": ('[sweep]\nargs = ["--bogus", "1"]\n[axes]\nlr = [1e-3]\n', "unknown option 'bogus'"),
        "unknown in rule": ("[axes]\nlr = [1e-3]\n[[rules]]\nwhen = { lr = 1e-3 }\nset = { warmup = 3 }\n",
                            "unknown option 'warmup'"),
        "unknown in when": ("[axes]\nlr = [1e-3]\n[[rules]]\nwhen = { depth = 3 }\nset = { lr = 1 }\n",
                            "unknown option 'depth'"),
        "malformed": ("[axes\nlr = [1e-3]\n", "malformed TOML"),
        "empty axis": ("[axes]\nlr = []\n", "axis 'lr' has no values"),
        "nothing": ("[axes]\n", "nothing to sweep"),
        "duplicate names": ('[methods]\n"Pre LN" = { lr = 1 }\n"pre-ln" = { lr = 2 }\n',
                            "two runs are both named 'pre-ln'"),
        "duplicate values": ("[axes]\nlr = [0.001, 1e-3]\n", "two runs are both named 'lr-0.001'"),
        "owned option": ("[axes]\nsave = ['a', 'b']\n", "option 'save' is set by the sweep"),
        "switch value": ("[axes]\nlayernorm-scaling = [1, 2]\n", "is a switch"),
        "method seeds": ('[methods]\n"A" = { lr = 1, seeds = [1, 1] }\n', '[methods."A"] seeds has a duplicate'),
    }
    for name, (text, message) in cases.items():
        fake.clear()
        path = write(os.path.join(root, f"bad_{name.replace(' ', '_')}.toml"), text)
        out = os.path.join(root, f"out_bad_{name.replace(' ', '_')}")
        result = sweep(fake, path, out)
        lines = result.stderr.strip().splitlines()
        check(f"refusal {name}: exit 1", result.returncode == 1, result.returncode)
        check(f"refusal {name}: one line naming the file", len(lines) == 1 and path in lines[0] and message in lines[0],
              result.stderr)
        check(f"refusal {name}: no run started", fake.trains() == [] and not os.path.exists(out), fake.trains())


def expected_row(directory, name):
    """A results.csv row recomputed from a run's metrics.jsonl with the report tests' reference."""
    records, _ = reference.read_records(os.path.join(directory, "metrics.jsonl"))
    train, validation = reference.latest(records, "train"), reference.latest(records, "validation")
    probe, tasks = reference.latest(records, "probe"), reference.latest(records, "tasks")
    row = {"run": name, "steps": max(train) if train else None}
    row["final_train_loss"] = train[max(train)]["loss"] if train else None
    row["final_val_ppl"] = validation[max(validation)]["val_ppl"] if validation else None
    row["best_val_ppl"] = min(r["val_ppl"] for r in validation.values()) if validation else None
    row["loss_spike_score_pct"] = reference.spike_score(reference.per_step(records, "step_loss", "loss"))[0] \
        if train else None
    row["grad_norm_spike_score_pct"] = reference.spike_score(
        reference.per_step(records, "step_grad_norm", "grad_norm"))[0] if train else None
    act = probe[max(probe)]["probe/act_norm"]
    row["act_norm_growth"] = act[-1] / act[0]
    if tasks:
        last = tasks[max(tasks)]
        row["zero_shot_avg"] = (last["tasks/piqa/acc_norm"] + last["tasks/lambada_openai/acc"]) / 2
    return row


def close(got, want):
    return math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-12)


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def check_figure(path, name):
    if not os.path.isfile(path):
        failures.append(f"{name}: {path} missing")
        return
    check(f"{name} not blank", matplotlib.image.imread(path).var() > 0)


MAIN_GRID = BASE + """seeds = [1, 2]
[axes]
num-layers = [2, 4]
[methods]
"Pre-LN" = { prores-schedule = "none" }
"ProRes" = { prores-schedule = "linear" }
"Broken" = { fake-behavior = "fail" }
"NaN" = { fake-behavior = "nan" }
"Huge" = { fake-behavior = "ppl" }
"""


def statuses(out):
    result = {}
    for name in sorted(os.listdir(os.path.join(out, "runs"))):
        path = os.path.join(out, "runs", name, "status.json")
        if os.path.exists(path):
            with open(path) as f:
                result[name] = json.load(f)
    return result


def check_main_sweep(root, fake):
    grid = write(os.path.join(root, "main.toml"), MAIN_GRID)
    out = os.path.join(root, "main")
    fake.clear()
    result = sweep(fake, grid, out, "--jobs", "2", "--report")
    check("main: exit 1 (a run failed)", result.returncode == 1, result.stderr[-2000:])
    trains = fake.trains()
    check("main: every run started (the sweep goes on after failures)", len(trains) == 20, len(trains))
    cores = len(os.sched_getaffinity(0))
    check("main: OMP_NUM_THREADS = cores / jobs", all(t["omp"] == str(max(1, cores // 2)) for t in trains),
          {t["omp"] for t in trains})
    check("main: progress", re.search(r"sweep: run \d+/20 started: pre-ln_num-layers-2_seed-1", result.stderr)
          and re.search(r"sweep: run \d+/20 finished in \d+s: .*\[\d+/20 done", result.stderr)
          and "ETA" in result.stderr, result.stderr[:1500])
    status = statuses(out)
    check("main: a status per run", len(status) == 20, sorted(status))
    for name, record in status.items():
        want = ("failed" if name.startswith("broken") else "diverged" if name.startswith(("nan", "huge"))
                else "finished")
        check(f"main: {name} status", record["status"] == want, record["status"])
        check(f"main: {name} command", "--seed" in record["argv"] and record["argv"][:2] == [fake.path, "train"]
              and record["argv"][record["argv"].index("--log-dir") + 1] == os.path.join(out, "runs", name), record)
        check(f"main: {name} wall time", record["wall_s"] >= 0)
    broken = status["broken_num-layers-2_seed-1"]
    check("failed: exit code", broken["exit_code"] == 2, broken)
    check("failed: log tail", "cannot open data/missing.bin" in broken["log_tail"] and
          "something is about to go wrong" in broken["log_tail"], broken.get("log_tail"))
    check("failed: log", "cannot open data/missing.bin" in open(os.path.join(out, "runs", "broken_num-layers-2_seed-1",
                                                                               "train.log")).read())
    nan = status["nan_num-layers-4_seed-2"]
    check("diverged by message", nan["exit_code"] == 1 and "loss is nan at iteration 7" in nan["reason"], nan)
    huge = status["huge_num-layers-2_seed-1"]
    check("diverged by perplexity", huge["exit_code"] == 0 and "5000" in huge["reason"], huge)

    # results.csv against the reference computation
    rows = {row["run"]: row for row in read_csv(os.path.join(out, "results.csv"))}
    check("results.csv: a row per run", len(rows) == 20, len(rows))
    for name, row in rows.items():
        check(f"results.csv {name}: status", row["status"] == status[name]["status"])
        if name.startswith(("broken", "nan")):
            continue
        want = expected_row(os.path.join(out, "runs", name), name)
        for key, value in want.items():
            if key == "run":
                continue
            if value is None:
                check(f"results.csv {name} {key} empty", row[key] == "", row[key])
            else:
                check(f"results.csv {name} {key}", row[key] != "" and close(row[key], value), f"{row[key]} vs {value}")
        check(f"results.csv {name}: axes", row["num-layers"] in ("2", "4") and row["seed"] in ("1", "2")
              and row["method"] in ("Pre-LN", "ProRes", "Huge"), row)
        check(f"results.csv {name}: wall", close(row["wall_s"], status[name]["wall_s"]))
    check("spike scores not all zero", any(float(r["loss_spike_score_pct"] or 0) > 0 for r in rows.values())
          and any(float(r["grad_norm_spike_score_pct"] or 0) > 0 for r in rows.values()))

    means = read_csv(os.path.join(out, "results_mean.csv"))
    check("results_mean.csv: a row per method and depth", len(means) == 10, len(means))
    for row in means:
        names = [f"{row['method'].lower()}_num-layers-{row['num-layers']}_seed-{s}" for s in (1, 2)]
        finished = [rows[n] for n in names if n in rows and rows[n]["status"] == "finished"]
        check(f"results_mean {row['method']} {row['num-layers']}: counts",
              int(row["runs"]) == 2 and int(row["finished"]) == len(finished)
              and int(row["diverged"]) == sum(rows[n]["status"] == "diverged" for n in names if n in rows), row)
        if len(finished) == 2:
            ppl = [float(r["final_val_ppl"]) for r in finished]
            check(f"results_mean {row['method']} {row['num-layers']}: mean",
                  close(row["final_val_ppl_mean"], statistics.mean(ppl))
                  and close(row["final_val_ppl_std"], statistics.stdev(ppl))
                  and close(row["final_val_ppl_min"], min(ppl)) and row["final_val_ppl_n"] == "2", row)
        elif not finished:
            check(f"results_mean {row['method']} {row['num-layers']}: empty", row["final_val_ppl_mean"] == "", row)
    with open(os.path.join(out, "results.md")) as f:
        markdown = f.read()
    check("results.md: both tables", "## Mean over seeds" in markdown and "## Runs" in markdown
          and markdown.count("\n| ") >= 32, markdown[:500])
    check("results.md: mean ± std", "±" in markdown)

    for file in ("val_ppl.png", "spike_score.png"):
        check_figure(os.path.join(out, "figures", file), file)
    with open(os.path.join(out, "index.html")) as f:
        page = f.read()
    check("index.html: figures", 'src="figures/val_ppl.png"' in page and 'src="figures/spike_score.png"' in page)
    check("index.html: report link", 'href="report/index.html"' in page)
    check("report written", os.path.isfile(os.path.join(out, "report", "index.html")))
    check("report: finished and diverged runs", "huge_num-layers-4_seed-2" in open(
        os.path.join(out, "report", "index.html")).read())
    check("report: act-norm heatmap", os.path.isfile(os.path.join(out, "report", "pre-ln_num-layers-4_seed-1_act_norm.png")))
    check("grid copied", os.path.isfile(os.path.join(out, "grid.toml")))
    return grid, out


def check_resume(fake, grid, out):
    # Everything final or failed: nothing runs again.
    fake.clear()
    result = sweep(fake, grid, out)
    check("resume: exit 0 when nothing failed this time", result.returncode == 0, result.stderr[-1000:])
    check("resume: finished, diverged and failed skipped", fake.trains() == [], fake.trains())
    check("resume: skip lines", "skipped (finished): pre-ln_num-layers-2_seed-1" in result.stderr
          and "skipped (failed (--retry-failed runs it again)): broken_num-layers-2_seed-1" in result.stderr,
          result.stderr[:800])
    # An interrupted run (a checkpoint, no final status) resumes with --load; a failed one with --retry-failed.
    interrupted = os.path.join(out, "runs", "prores_num-layers-4_seed-1")
    os.remove(os.path.join(interrupted, "status.json"))
    fake.clear()
    result = sweep(fake, grid, out, "--retry-failed")
    trains = {t["argv"][t["argv"].index("--log-dir") + 1]: t["argv"] for t in fake.trains()}
    check("resume: relaunched runs", sorted(os.path.basename(d) for d in trains) == sorted(
        ["prores_num-layers-4_seed-1"] + [f"broken_num-layers-{l}_seed-{s}" for l in (2, 4) for s in (1, 2)]),
        sorted(trains))
    argv = trains.get(interrupted, [])
    check("resume: --load its checkpoints", "--load" in argv and argv[argv.index("--load") + 1] == os.path.join(
        interrupted, "checkpoints"), argv)
    check("resume: failed retried fresh", all("--load" not in a for d, a in trains.items() if "broken" in d))
    check("resume: status finished again", statuses(out)["prores_num-layers-4_seed-1"]["status"] == "finished")
    check("resume: progress says resumed", "resumed: prores_num-layers-4_seed-1" in result.stderr, result.stderr[:800])


def check_signal(root, fake):
    grid = write(os.path.join(root, "slow.toml"), BASE + """seeds = [1, 2]
[axes]
num-layers = [2]
[methods]
"Slow" = { fake-behavior = "slow" }
"Later" = { fake-behavior = "ok" }
""")
    out = os.path.join(root, "slow")
    fake.clear()
    process = subprocess.Popen(sweep_command(fake, grid, out, "--jobs", "2"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=environment(fake), cwd=REPO)
    ready = [os.path.join(out, "runs", f"slow_num-layers-2_seed-{s}", "ready") for s in (1, 2)]
    deadline = time.monotonic() + 60
    while not all(os.path.exists(path) for path in ready) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    check("signal: exit 130", process.returncode == 130, stderr[-1500:])
    status = statuses(out)
    check("signal: both running runs interrupted", [status.get(f"slow_num-layers-2_seed-{s}", {}).get("status")
                                                   for s in (1, 2)] == ["interrupted"] * 2, status)
    check("signal: the queued runs not started", len(fake.trains()) == 2, fake.trains())
    check("signal: the trainers saved", all(open(os.path.join(out, "runs", f"slow_num-layers-2_seed-{s}", "checkpoints",
                                                              "latest")).read().strip() == "8" for s in (1, 2)))
    fake.clear()
    result = sweep(fake, grid, out, "--jobs", "2")
    check("signal: rerun exit 0", result.returncode == 0, result.stderr[-1500:])
    trains = fake.trains()
    check("signal: rerun resumes the interrupted with --load and starts the rest",
          len(trains) == 4 and sum("--load" in t["argv"] for t in trains) == 2, trains)
    status = statuses(out)
    check("signal: all finished", all(record["status"] == "finished" for record in status.values()) and
          len(status) == 4, {k: v["status"] for k, v in status.items()})
    record = status["slow_num-layers-2_seed-1"]
    check("signal: attempts and wall time add up", record["attempts"] == 2 and record["wall_s"] >= record[
        "attempt_wall_s"], record)
    rows = {row["run"]: row for row in read_csv(os.path.join(out, "results.csv"))}
    want = expected_row(os.path.join(out, "runs", "slow_num-layers-2_seed-1"), "x")
    check("signal: resumed run's results", close(rows["slow_num-layers-2_seed-1"]["final_val_ppl"],
                                                 want["final_val_ppl"]) and rows["slow_num-layers-2_seed-1"]["steps"]
          == "40", rows["slow_num-layers-2_seed-1"])


def check_dry_run_and_other_axes(root, fake):
    grid = write(os.path.join(root, "dry.toml"), """[sweep]
ranks = 2
args = ["--train-iters", "40"]
seeds = [7]
[axes]
lr = [1e-3, 2e-3]
norm-placement = ["pre", "post"]
""")
    out = os.path.join(root, "dry")
    fake.clear()
    result = sweep(fake, grid, out, "--dry-run", "--jobs", "2")
    check("dry run: exit 0", result.returncode == 0, result.stderr)
    check("dry run: nothing trained or written", fake.trains() == [] and not os.path.exists(out))
    lines = result.stdout.splitlines()
    check("dry run: 4 runs listed", sum(line.startswith("run ") for line in lines) == 4, result.stdout)
    check("dry run: mpirun for ranks = 2", "launch/mpirun.sh 2 " + fake.path + " train --train-iters 40 --lr 0.001 "
          "--norm-placement pre --seed 7 --log-dir" in result.stdout, result.stdout)
    # A grid without num-layers draws against its first axis; without axes, against the methods.
    grid = write(os.path.join(root, "lr.toml"), BASE + "[axes]\nlr = [1e-3, 2e-3, 4e-3]\nnorm-placement = ['pre']\n")
    out = os.path.join(root, "lr")
    result = sweep(fake, grid, out)
    check("lr axis: exit 0", result.returncode == 0, result.stderr[-1000:])
    check_figure(os.path.join(out, "figures", "val_ppl.png"), "lr axis val_ppl.png")
    grid = write(os.path.join(root, "methods.toml"), BASE + '[methods]\n"A" = { lr = 1e-3 }\n"B" = { lr = 2e-3 }\n')
    out = os.path.join(root, "methods")
    result = sweep(fake, grid, out)
    check("methods only: exit 0", result.returncode == 0, result.stderr[-1000:])
    check_figure(os.path.join(out, "figures", "spike_score.png"), "methods only spike_score.png")


def main():
    with tempfile.TemporaryDirectory() as root:
        fake = Fake(root)
        check_help_parsing()
        try:
            check_expansion(root)
        except GridError as e:
            failures.append(f"expansion: {e}")
        check_refusals(root, fake)
        grid, out = check_main_sweep(root, fake)
        check_resume(fake, grid, out)
        check_signal(root, fake)
        check_dry_run_and_other_axes(root, fake)
    for failure in failures:
        print(f"FAIL {failure}")
    print(f"{'FAILED' if failures else 'passed'}: sweep checks ({len(failures)} failures)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
