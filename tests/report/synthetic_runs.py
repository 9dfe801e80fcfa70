"""Synthetic run directories for the report tests: metrics.jsonl (and similarity.jsonl) as prores writes them
(docs/diagnostics.md, "Files a run leaves behind"), with the faults a real run directory can have.

- `full`: 4 layers, 400 steps logged every 10 with per-step arrays, loss spikes at iterations 120 and 250 and a
  gradient-norm spike at 200, validation every 100, probe records every 100 from 0, a tasks record, similarity.jsonl
  (one malformed line); killed mid-write after iteration 300 and resumed from iteration 200 (the iterations 210-300
  appear twice, the resumed values differ), plus a blank and a non-JSON line: 3 malformed lines.
- `small`: 2 layers, 300 steps with per-step arrays and validation (the last not the best), nothing else.
- `logged`: 3 layers, 200 steps of an older run: no per-step arrays (the logged points stand in), no validation.
"""

import json
import math
import os


def _write_lines(path, lines):
    with open(path, "w") as f:
        f.write("".join(lines))


def _line(record):
    return json.dumps(record) + "\n"


def _loss(t, resumed):
    return 4.0 - 2.0 * t / 400 + 0.05 * math.sin(t) + (6.0 if t in (120, 250) else 0.0) + (0.01 if resumed else 0.0)


def _grad_norm(t):
    return 1.0 + 0.1 * math.cos(1.7 * t) + (9.0 if t == 200 else 0.0)


def _train_record(t, layers, resumed=False, arrays=True, interval=10):
    steps = range(t - interval + 1, t + 1)
    record = {"iter": t, "loss": _loss(t, resumed), "lr": 1e-3 * min(1.0, t / 50), "grad_norm": _grad_norm(t),
              "tokens_per_sec": 5000.0 + t, "mfu": 0.4, "consumed_samples": 8 * t,
              "alpha": [min(1.0, t / (100.0 * l)) for l in range(1, layers + 1)],
              "act_rms": [0.5 + 0.1 * l for l in range(1, layers + 1)]}
    if arrays:
        record["step_loss"] = [_loss(s, resumed) for s in steps]
        record["step_grad_norm"] = [_grad_norm(s) for s in steps]
    return record


def _probe_record(t, layers):
    act_norm = [10.0 * (1.2 + t / 400) ** l for l in range(1, layers + 1)]
    alpha = [min(1.0, t / (100.0 * l)) for l in range(1, layers + 1)]
    return {"iter": t, "probe/tokens": 512, "probe/act_norm": act_norm,
            "probe/attn_branch_norm": [3.0 + l for l in range(layers)],
            "probe/attn_branch_scaled_norm": [(3.0 + l) * a for l, a in enumerate(alpha)],
            "probe/mlp_branch_norm": [5.0 + l for l in range(layers)],
            "probe/mlp_branch_scaled_norm": [(5.0 + l) * a for l, a in enumerate(alpha)]}


def _validation_record(t, offset=0.0):
    val_loss = 3.5 - t / 400 + offset
    return {"iter": t, "val_loss": val_loss, "val_ppl": math.exp(val_loss)}


def write_full(directory):
    os.makedirs(directory, exist_ok=True)
    layers = 4
    lines = [_line(_probe_record(0, layers))]
    for t in range(10, 301, 10):
        lines.append(_line(_train_record(t, layers)))
        if t % 100 == 0:
            lines += [_line(_validation_record(t)), _line(_probe_record(t, layers))]
    lines.append("\n")
    lines.append("not json at all\n")
    lines.append(json.dumps(_train_record(310, layers))[:57])  # killed mid-write: the resumed run appends to it
    for t in range(210, 401, 10):
        lines.append(_line(_train_record(t, layers, resumed=True)))
        if t % 100 == 0:
            lines += [_line(_validation_record(t, offset=0.02)), _line(_probe_record(t, layers))]
    lines.append(_line({"iter": 400, "tasks/piqa/acc": 0.61, "tasks/piqa/acc_norm": 0.63,
                        "tasks/average/acc": 0.58}))
    _write_lines(os.path.join(directory, "metrics.jsonl"), lines)
    similarity = [_line({"iter": t, "final_iter": 400, "probe/tokens": 512,
                         "similarity/block_output": [1 - (400 - t) / (800 * l) for l in range(1, layers + 1)],
                         "similarity/attn_branch": [1 - (400 - t) / (500 * l) for l in range(1, layers + 1)],
                         "similarity/mlp_branch": [1 - (400 - t) / (600 * l) for l in range(1, layers + 1)]})
                  for t in (50, 100, 200, 300, 400)]
    similarity.insert(2, '{"iter": 150, "similarity/block_outp\n')
    _write_lines(os.path.join(directory, "similarity.jsonl"), similarity)


def write_small(directory):
    os.makedirs(directory, exist_ok=True)
    lines = []
    for t in range(10, 301, 10):
        lines.append(_line(_train_record(t, 2)))
        if t % 150 == 0:
            lines.append(_line(_validation_record(t, offset=0.1 if t == 150 else 0.6)))  # the best is not the last
    _write_lines(os.path.join(directory, "metrics.jsonl"), lines)


def write_logged(directory):
    os.makedirs(directory, exist_ok=True)
    _write_lines(os.path.join(directory, "metrics.jsonl"),
                 [_line(_train_record(t, 3, arrays=False)) for t in range(10, 201, 10)])


def write_all(root):
    """The three runs under root; returns {name: directory}."""
    runs = {name: os.path.join(root, name) for name in ("full", "small", "logged")}
    write_full(runs["full"])
    write_small(runs["small"])
    write_logged(runs["logged"])
    return runs
