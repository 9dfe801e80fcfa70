"""Independent reference for the report tests (tests/report/*_check.py): reads metrics.jsonl and computes the
spike score the slow, obvious way (plain Python, one step at a time), without python/prores_tools, so that the
report's numbers are checked against a second implementation of docs/diagnostics.md's definitions."""

import json
import math
from fractions import Fraction

SKIP = 77  # ctest's SKIP_RETURN_CODE for these tests


def read_records(path):
    """(records in file order, number of lines skipped): a line counts when it is a JSON object with an int iter."""
    records, skipped = [], 0
    with open(path, "rb") as f:
        for line in f.read().splitlines():
            try:
                record = json.loads(line.decode("utf-8"))
                assert isinstance(record, dict) and type(record.get("iter")) is int
                records.append(record)
            except (ValueError, AssertionError, UnicodeDecodeError):
                skipped += 1
    return records, skipped


def kind(record):
    if any(k.startswith("probe/") for k in record):
        return "probe"
    if any(k.startswith("tasks/") for k in record):
        return "tasks"
    return "validation" if "val_loss" in record else "train" if "loss" in record else None


def latest(records, wanted_kind):
    """{iter: record} of one kind, the later line winning."""
    return {r["iter"]: r for r in records if kind(r) == wanted_kind}


def per_step(records, array_key, point_key):
    """{iteration: value} from the train records' arrays, else their logged point; None stays None."""
    steps = {}
    for r in records:
        if kind(r) != "train":
            continue
        if isinstance(r.get(array_key), list):
            for i, value in enumerate(r[array_key]):
                steps[r["iter"] - len(r[array_key]) + 1 + i] = value
        elif point_key in r:
            steps[r["iter"]] = r[point_key]
    return steps


def spike_score(steps, window=1000, sigma=7.0, begin="0.1", end="0.9"):
    """(percent or None, spikes, scored, spike iterations) of {iteration: value} per docs/diagnostics.md."""
    last = max(steps)
    lo, hi = math.ceil(Fraction(begin) * last), math.ceil(Fraction(end) * last)
    history, spikes, scored, spike_iters = [], 0, 0, []
    for iteration in sorted(steps):
        value = steps[iteration]
        if value is None or not math.isfinite(value):
            continue
        recent = history[-window:]
        if lo <= iteration - 1 < hi and len(recent) >= 2:
            scored += 1
            mean = sum(recent) / len(recent)
            std = math.sqrt(sum((x - mean) ** 2 for x in recent) / len(recent))
            deviation = abs(value - mean)
            if deviation > 0 and deviation >= sigma * std:
                spikes += 1
                spike_iters.append(iteration)
        history.append(value)
    return (100.0 * spikes / scored if scored else None), spikes, scored, spike_iters
