"""One run's recorded data (docs/diagnostics.md, "Files a run leaves behind").

metrics.jsonl's records are told apart by their keys (train, validation, tasks, probe); for every kind the later
line for an iteration wins, as a resumed run appends. Per-step series come from the train records' `step_loss` and
`step_grad_norm` arrays, or from their logged `loss` and `grad_norm` points where a record has no arrays.
similarity.jsonl (`prores analyze`) is read when present.
"""

import functools
import math
import os
from dataclasses import dataclass

import numpy as np

from .errors import ReportError
from .jsonl import read_jsonl

PER_STEP = "per step"
LOGGED_POINTS = "logged points"
MIXED = "per step where recorded, logged points elsewhere"


def record_kind(record):
    """'probe', 'tasks', 'validation', 'train', or None for a record of no known kind."""
    if any(key.startswith("probe/") for key in record):
        return "probe"
    if any(key.startswith("tasks/") for key in record):
        return "tasks"
    if "val_loss" in record:
        return "validation"
    if "loss" in record:
        return "train"
    return None


def as_number(value):
    """A JSON number as a float; null (how NaN and ±inf are written) and anything else as NaN."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return math.nan


def latest_per_iteration(records):
    """The records with the later one winning for each iteration, ordered by iteration."""
    by_iteration = {}
    for record in records:
        by_iteration[record["iter"]] = record
    return [by_iteration[iteration] for iteration in sorted(by_iteration)]


@dataclass
class Series:
    """Values at iterations (ascending); NaN where a value was null. `source` says where per-step values came from."""

    iters: np.ndarray
    values: np.ndarray
    source: str = PER_STEP

    def __len__(self):
        return len(self.iters)


def _series_from_points(points, source=PER_STEP):
    iterations = sorted(points)
    return Series(np.array(iterations, dtype=np.int64), np.array([points[i] for i in iterations], dtype=float), source)


def point_series(records, key):
    """`key` of every record that has it, one value per iteration (records as latest_per_iteration gives them)."""
    return _series_from_points({r["iter"]: as_number(r[key]) for r in records if key in r})


@dataclass
class LayerMatrix:
    """A per-layer value over iterations: `values[l, j]` is layer l+1 at `iters[j]`."""

    iters: np.ndarray
    values: np.ndarray

    @property
    def num_layers(self):
        return self.values.shape[0]


def layer_matrix(records, key):
    """The list-valued `key` of the records as a LayerMatrix; records whose list length differs from the last
    one's are left out. None when no record has the key."""
    rows = [(r["iter"], r[key]) for r in records if isinstance(r.get(key), list) and r[key]]
    if not rows:
        return None
    num_layers = len(rows[-1][1])
    rows = [(iteration, values) for iteration, values in rows if len(values) == num_layers]
    values = np.array([[as_number(v) for v in layer_values] for _, layer_values in rows], dtype=float).T
    return LayerMatrix(np.array([iteration for iteration, _ in rows], dtype=np.int64), values)


class RunData:
    """metrics.jsonl (and similarity.jsonl when present) of one run directory; `records[kind]` holds the latest
    record of each iteration, ordered by iteration."""

    def __init__(self, directory, label):
        self.directory = directory
        self.label = label
        self.metrics_file = self._read(os.path.join(directory, "metrics.jsonl"), required=True)
        if not self.metrics_file.records:
            raise ReportError(f"{directory}: metrics.jsonl has no readable record")
        self._records_in_file_order = {"train": [], "validation": [], "tasks": [], "probe": []}
        self.unknown_records = 0
        for record in self.metrics_file.records:
            kind = record_kind(record)
            if kind is None:
                self.unknown_records += 1
            else:
                self._records_in_file_order[kind].append(record)
        self.records = {kind: latest_per_iteration(rs) for kind, rs in self._records_in_file_order.items()}
        self.similarity_file = self._read(os.path.join(directory, "similarity.jsonl"), required=False)
        self.similarity = latest_per_iteration(self.similarity_file.records) if self.similarity_file else []

    def _read(self, path, required):
        name = os.path.basename(path)
        if not os.path.isfile(path):
            if required:
                raise ReportError(f"{self.directory}: no {name}")
            return None
        try:
            return read_jsonl(path)
        except OSError as e:
            raise ReportError(f"{self.directory}: cannot read {name} ({e.strerror})") from None

    def step_series(self, array_key, point_key):
        """Every step's value from the train records' `array_key` arrays (iterations iter-n+1..iter), or the logged
        `point_key` of a record without one (none with point_key None); lines are taken in file order, so a later
        line wins for a step."""
        points = {}
        records_with_arrays = records_without = 0
        for record in self._records_in_file_order["train"]:
            array = record.get(array_key)
            if isinstance(array, list):
                records_with_arrays += 1
                first = record["iter"] - len(array) + 1
                for offset, value in enumerate(array):
                    points[first + offset] = as_number(value)
            elif point_key is not None and point_key in record:
                records_without += 1
                points[record["iter"]] = as_number(record[point_key])
        source = MIXED if records_with_arrays and records_without else PER_STEP if records_with_arrays else LOGGED_POINTS
        return _series_from_points(points, source)

    @functools.cached_property
    def train_loss(self):
        return self.step_series("step_loss", "loss")

    @functools.cached_property
    def grad_norm(self):
        return self.step_series("step_grad_norm", "grad_norm")

    def num_layers(self):
        """L from the last record with a per-layer list (α, probe act norm, act_rms), or None."""
        for kind, key in (("train", "alpha"), ("probe", "probe/act_norm"), ("train", "act_rms")):
            for record in reversed(self.records[kind]):
                if isinstance(record.get(key), list):
                    return len(record[key])
        return None

    def notes(self):
        """What was skipped, or stood in for missing data, while reading."""
        notes = [file.skipped_note() for file in (self.metrics_file, self.similarity_file) if file]
        if self.unknown_records:
            notes.append(f"{self.unknown_records} record(s) of no known kind in {self.metrics_file.path} ignored")
        for name, series in (("training loss", self.train_loss), ("gradient norm", self.grad_norm)):
            if len(series) and series.source != PER_STEP:
                notes.append(f"{self.label}: train records without per-step arrays: the {name} series (and its spike "
                             f"score) uses {series.source}")
        return [note for note in notes if note]
