"""A sweep's results (docs/sweeps.md, "Results"): one row per run, from its status.json and, through the report's
summary (summary.summarize), its metrics.jsonl; and a table over seeds per method and axis point.

results.csv / results_mean.csv hold full precision, results.md both tables with 6 significant digits. The table
over seeds takes finished runs only (a diverged run counts in its `diverged` column, not in the means).
"""

import csv
import html
import math
import os
from dataclasses import dataclass

import numpy as np

from .errors import ReportError
from .run_data import RunData
from .summary import _csv_cell, _display_cell, summarize
from .sweep_grid import value_text
from .sweep_runner import DIVERGED, FINISHED, PENDING, read_status, run_directory

METRICS = (  # (key, heading): the per-run values averaged over seeds
    ("final_val_ppl", "final val ppl"),
    ("best_val_ppl", "best val ppl"),
    ("final_train_loss", "final train loss"),
    ("loss_spike_score_pct", "loss spike score %"),
    ("grad_norm_spike_score_pct", "grad-norm spike score %"),
    ("act_norm_growth", "act norm growth (last/first block)"),
    ("zero_shot_avg", "zero-shot avg"),
    ("wall_s", "wall s"),
)
TASK_METRICS = ("acc_norm", "acc")  # per task the first one recorded goes into the zero-shot average


def zero_shot_average(values):
    """The mean over tasks of each task's acc_norm, else acc, from a summary row's tasks/<task>/<metric>; None
    without any."""
    per_task = {}
    for key, value in values.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == "tasks" and parts[2] in TASK_METRICS and math.isfinite(value):
            task, metric = parts[1], parts[2]
            if task not in per_task or TASK_METRICS.index(metric) < TASK_METRICS.index(per_task[task][0]):
                per_task[task] = (metric, value)
    return float(np.mean([value for _, value in per_task.values()])) if per_task else None


@dataclass
class RunRow:
    run: object  # sweep_grid.Run
    status: str
    values: dict  # column key -> value (None: missing)
    directory: str


def collect_rows(grid, out, spike_options):
    rows = []
    for run in grid.runs:
        directory = run_directory(out, run)
        status_record = read_status(directory) or {}
        values = {"run": run.name, "method": run.method, "seed": run.seed}
        values.update({axis: value_text(value) if isinstance(value, (list, bool)) else value
                       for axis, value in run.axis_values.items()})
        summary = None
        if os.path.isfile(os.path.join(directory, "metrics.jsonl")):
            try:
                summary = summarize(RunData(directory, run.name), spike_options).values
            except ReportError:
                summary = None
        if summary:
            for key in ("steps", "final_train_loss", "final_val_ppl", "best_val_ppl", "loss_spike_score_pct",
                        "grad_norm_spike_score_pct", "act_norm_growth"):
                values[key] = summary.get(key)
            values["zero_shot_avg"] = zero_shot_average(summary)
        values["status"] = status_record.get("status", PENDING)
        values["wall_s"] = status_record.get("wall_s")
        rows.append(RunRow(run, values["status"], values, directory))
    return rows


def run_columns(grid):
    columns = [("run", "run")]
    if grid.methods:
        columns.append(("method", "method"))
    columns += [(axis, axis) for axis in grid.axes]
    if any(seed is not None for seed in grid.seeds):
        columns.append(("seed", "seed"))
    columns += [("status", "status"), ("steps", "steps")] + list(METRICS)
    return columns


@dataclass
class Aggregate:
    """The runs of one method and axis point over seeds."""

    method: str | None
    axis_values: dict
    rows: list

    @property
    def finished(self):
        return [row for row in self.rows if row.status == FINISHED]

    @property
    def diverged(self):
        return [row for row in self.rows if row.status == DIVERGED]

    def values(self, key):
        """The finite values of `key` over the finished runs."""
        return np.array([v for row in self.finished if isinstance(v := row.values.get(key), (int, float))
                         and math.isfinite(v)], dtype=float)

    def stats(self, key):
        """(mean, sample standard deviation or None with one value, min, max, n) or None without values."""
        values = self.values(key)
        if not len(values):
            return None
        std = float(np.std(values, ddof=1)) if len(values) > 1 else None
        return float(np.mean(values)), std, float(values.min()), float(values.max()), len(values)


def aggregate(rows):
    groups = {}
    for row in rows:
        key = (row.run.method, tuple((axis, value_text(value)) for axis, value in row.run.axis_values.items()))
        if key not in groups:
            groups[key] = Aggregate(row.run.method, dict(row.run.axis_values), [])
        groups[key].rows.append(row)
    return list(groups.values())


def _mean_cell(stats):
    if stats is None:
        return "–"
    mean, std, _, _, _ = stats
    return f"{mean:.6g}" if std is None else f"{mean:.4g} ± {std:.2g}"


class ResultTables:
    def __init__(self, grid, rows):
        self.grid, self.rows = grid, rows
        self.columns = run_columns(grid)
        self.groups = aggregate(rows)
        self.group_columns = ([("method", "method")] if grid.methods else []) + [(a, a) for a in grid.axes]

    def _group_key_cells(self, group):
        cells = [group.method] if self.grid.methods else []
        return cells + [value_text(group.axis_values[axis]) for axis in self.grid.axes]

    def write(self, out):
        with open(os.path.join(out, "results.csv"), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([key for key, _ in self.columns])
            for row in self.rows:
                writer.writerow([_csv_cell(row.values.get(key)) for key, _ in self.columns])
        with open(os.path.join(out, "results_mean.csv"), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([key for key, _ in self.group_columns] + ["runs", "finished", "diverged"]
                            + [f"{key}_{part}" for key, _ in METRICS for part in ("mean", "std", "min", "max", "n")])
            for group in self.groups:
                cells = self._group_key_cells(group) + [len(group.rows), len(group.finished), len(group.diverged)]
                for key, _ in METRICS:
                    stats = self.stats_or_empty(group, key)
                    cells += [_csv_cell(value) for value in stats]
                writer.writerow(cells)
        with open(os.path.join(out, "results.md"), "w") as f:
            f.write(self.markdown())

    @staticmethod
    def stats_or_empty(group, key):
        stats = group.stats(key)
        return (None,) * 5 if stats is None else stats

    def run_table(self):
        return [[heading for _, heading in self.columns]] + [
            [_display_cell(row.values.get(key)) for key, _ in self.columns] for row in self.rows]

    def mean_table(self):
        header = [heading for _, heading in self.group_columns] + ["runs", "finished", "diverged"] + [
            heading for _, heading in METRICS]
        body = [[str(c) for c in self._group_key_cells(group)]
                + [str(len(group.rows)), str(len(group.finished)), str(len(group.diverged))]
                + [_mean_cell(group.stats(key)) for key, _ in METRICS] for group in self.groups]
        return [header] + body

    @staticmethod
    def _markdown(table):
        lines = ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
        lines += ["| " + " | ".join(cells) + " |" for cells in table[1:]]
        return "\n".join(lines) + "\n"

    @staticmethod
    def html_table(table):
        header = "".join(f"<th>{html.escape(c)}</th>" for c in table[0])
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>\n" for cells in table[1:])
        return f"<table>\n<tr>{header}</tr>\n{body}</table>"

    def markdown(self):
        return ("## Mean over seeds (finished runs; ± the sample standard deviation)\n\n"
                + self._markdown(self.mean_table()) + "\n## Runs\n\n" + self._markdown(self.run_table()))
