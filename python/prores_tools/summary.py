"""The report's table: one row per run (final and best metrics, spike scores, activation growth, zero-shot results),
written as summary.csv (full precision) and summary.md, and as the table of index.html (6 significant digits).

A column no run has a value for is left out, with a note saying what was missing.
"""

import csv
import html
import math
from dataclasses import dataclass

import numpy as np

from .run_data import as_number, point_series
from .spike_score import SpikeScore, spike_score


@dataclass(frozen=True)
class Column:
    key: str  # summary.csv's header and the row's key
    heading: str  # summary.md's and index.html's header
    needs: str  # what a run must have recorded for a value: the note when no run has it


FIXED_COLUMNS = (
    Column("run", "run", ""),
    Column("layers", "layers", "per-layer records"),
    Column("steps", "steps", "train records"),
    Column("final_train_loss", "final train loss", "train records"),
    Column("final_val_ppl", "final val ppl", "validation records"),
    Column("best_val_ppl", "best val ppl", "validation records"),
    Column("loss_spike_score_pct", "loss spike score %", "steps in the spike-score phase"),
    Column("grad_norm_spike_score_pct", "grad-norm spike score %", "steps in the spike-score phase"),
    Column("act_norm_growth", "act norm growth (last/first block)", "probe records"),
)


@dataclass
class RunSummary:
    """One run's row (`values`, by column key) and the spike scores behind it."""

    values: dict
    loss_spikes: SpikeScore
    grad_norm_spikes: SpikeScore


def activation_growth(probe_records):
    """probe/act_norm of the last block over the first block's, at the last probe record that has it."""
    for record in reversed(probe_records):
        act_norm = record.get("probe/act_norm")
        if isinstance(act_norm, list) and act_norm:
            first, last = as_number(act_norm[0]), as_number(act_norm[-1])
            return last / first if first > 0 and math.isfinite(last) else None
    return None


def summarize(run, spike_options):
    loss_spikes = spike_score(run.train_loss.iters, run.train_loss.values, spike_options)
    grad_norm_spikes = spike_score(run.grad_norm.iters, run.grad_norm.values, spike_options)
    train = run.records["train"]
    val_ppl = point_series(run.records["validation"], "val_ppl").values
    finite_val_ppl = val_ppl[np.isfinite(val_ppl)]
    values = {
        "run": run.label,
        "layers": run.num_layers(),
        "steps": train[-1]["iter"] if train else None,
        "final_train_loss": as_number(train[-1].get("loss")) if train else None,
        "final_val_ppl": float(val_ppl[-1]) if len(val_ppl) else None,
        "best_val_ppl": float(finite_val_ppl.min()) if len(finite_val_ppl) else None,
        "loss_spike_score_pct": loss_spikes.percent,
        "grad_norm_spike_score_pct": grad_norm_spikes.percent,
        "act_norm_growth": activation_growth(run.records["probe"]),
    }
    if run.records["tasks"]:
        last_tasks = run.records["tasks"][-1]
        values.update({key: as_number(value) for key, value in last_tasks.items() if key.startswith("tasks/")})
    return RunSummary(values, loss_spikes, grad_norm_spikes)


def _csv_cell(value):
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def _display_cell(value):
    return "–" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)


class SummaryTable:
    def __init__(self, summaries):
        self.rows = [summary.values for summary in summaries]
        task_keys = sorted({key for row in self.rows for key in row if key.startswith("tasks/")})
        present = [c for c in FIXED_COLUMNS if any(row.get(c.key) is not None for row in self.rows)]
        self.columns = present + [Column(key, key, "") for key in task_keys]
        self.notes = []
        for column in FIXED_COLUMNS:
            note = f"no run has {column.needs}: no {column.heading} column"
            if column not in present and note not in self.notes:
                self.notes.append(note)

    def write_csv(self, path):
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([c.key for c in self.columns])
            for row in self.rows:
                writer.writerow([_csv_cell(row.get(c.key)) for c in self.columns])

    def markdown(self):
        lines = ["| " + " | ".join(c.heading for c in self.columns) + " |",
                 "|" + "---|" * len(self.columns)]
        for row in self.rows:
            lines.append("| " + " | ".join(_display_cell(row.get(c.key)) for c in self.columns) + " |")
        return "\n".join(lines) + "\n"

    def html(self):
        header = "".join(f"<th>{html.escape(c.heading)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_display_cell(row.get(c.key)))}</td>" for c in self.columns)
                       + "</tr>\n" for row in self.rows)
        return f"<table>\n<tr>{header}</tr>\n{body}</table>"
