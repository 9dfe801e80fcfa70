#!/usr/bin/env python3
"""Test of the spike score (python/prores_tools/spike_score.py; docs/diagnostics.md, "Spike score") on synthetic
series with spikes injected at known steps: exact percentages and spike iterations, the window, sigma and phase
options, the edge cases (short history, non-finite values, a constant window, logged points, phase rounding),
invalid options, and agreement with the plain-Python reference (reference.py) on random series.

    python3 tests/report/spike_score_check.py      # exit 77 (skipped) without numpy
"""

import importlib.util
import math
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
sys.path.insert(0, HERE)
import reference  # noqa: E402

if importlib.util.find_spec("numpy") is None:
    print("skip: numpy is not installed (bash launch/setup.sh)")
    sys.exit(reference.SKIP)
from prores_tools.spike_score import SpikeOptions, spike_score  # noqa: E402

failures = []


def check(name, got, want):
    if got != want:
        failures.append(f"{name}: got {got!r}, want {want!r}")


def alternating(num_steps):
    """1.0 at odd iterations, 1.2 at even ones: any even window has mean 1.1 and population std 0.1."""
    return {t: 1.0 if t % 2 else 1.2 for t in range(1, num_steps + 1)}


def score(steps, **options):
    iterations = sorted(steps)
    return spike_score(iterations, [steps[t] for t in iterations], SpikeOptions(**options))


# 1000 steps, window 100: the phase [0.1, 0.9) scores iterations 101..900 (800 steps). Spikes, up and down, at
# 150, 400 and 651; the ones at 50 and 950 lie outside the phase.
steps = alternating(1000)
for t, jump in ((50, 5.0), (150, 5.0), (400, -5.0), (651, 5.0), (950, 5.0)):
    steps[t] += jump
result = score(steps, window=100)
check("spikes in the phase: percent", result.percent, 100 * 3 / 800)
check("spikes in the phase: counts", (result.spikes, result.scored_steps, result.non_finite), (3, 800, 0))
check("spikes in the phase: iterations", result.spike_iters.tolist(), [150, 400, 651])

# The phase option: all of the run scores iterations 3..1000 (the first two have fewer than 2 earlier values).
result = score(steps, window=100, phase_begin=0.0, phase_end=1.0)
check("whole phase: percent", result.percent, 100 * 5 / 998)
check("whole phase: iterations", result.spike_iters.tolist(), [50, 150, 400, 651, 950])
result = score(steps, window=100, phase_begin=0.5, phase_end=0.7)
check("phase 0.5-0.7: iterations 501..700", (result.scored_steps, result.spike_iters.tolist()), (200, [651]))

# The sigma option: 1.7 at an even iteration is 6 standard deviations from 1.1.
steps = alternating(1000)
steps[500] = 1.7
check("6-sigma step, sigma 7", score(steps, window=100).spikes, 0)
check("6-sigma step, sigma 5", score(steps, window=100, sigma=5).spike_iters.tolist(), [500])
check("6-sigma step, sigma 5: percent", score(steps, window=100, sigma=5).percent, 100 / 800)

# The window option: a level shift from 1.0/1.2 to 3.0/3.2 at iteration 501 flags the first steps after it, fewer
# the shorter the window (the reference counts them one step at a time).
steps = {t: v + (2.0 if t > 500 else 0.0) for t, v in alternating(1000).items()}
for window in (10, 100, 1000):
    want = reference.spike_score(steps, window=window)
    got = score(steps, window=window)
    check(f"level shift, window {window}", (got.spikes, got.scored_steps, got.spike_iters.tolist()),
          (want[1], want[2], want[3]))
check("level shift flags step 501", 501 in score(steps, window=10).spike_iters, True)

# A history shorter than the window uses what exists: iteration 5 sees 1.0, 1.2, 1.0, 1.2 (mean 1.1, std 0.1).
steps = alternating(20)
steps[5] = 2.0
result = score(steps, phase_begin=0.0, phase_end=1.0)
check("short history", (result.spike_iters.tolist(), result.scored_steps), ([5], 18))
check("three steps: one scored", score({1: 1.0, 2: 2.0, 3: 9.0}, phase_begin=0.0, phase_end=1.0).scored_steps, 1)

# Non-finite values leave the series: neither history nor scored.
steps = alternating(1000)
steps[300], steps[301], steps[600] = math.nan, math.inf, 5.0
result = score(steps, window=100)
check("non-finite", (result.spikes, result.scored_steps, result.non_finite, result.spike_iters.tolist()),
      (1, 798, 2, [600]))

# A constant window: a different value is a spike, an equal one is not.
steps = {t: 2.0 for t in range(1, 1001)}
steps[500] = 2.5
check("constant window", score(steps, window=100).spike_iters.tolist(), [500])
check("constant series", score({t: 2.0 for t in range(1, 1001)}).spikes, 0)

# Logged points (every 10th iteration): the phase is in iterations (101..900: 110, ..., 900), the window in points.
steps = {t: 1.0 if t % 20 else 1.2 for t in range(10, 1001, 10)}
steps[500] = 9.0
result = score(steps, window=50)
check("logged points", (result.scored_steps, result.spike_iters.tolist()), (80, [500]))

# The phase bounds as the decimals written: 0.07 * 100 is 7.000000000000001 in binary floating point, yet the phase
# [0.07, 0.5) of 100 steps is iterations 8..50.
check("phase rounding", score(alternating(100), phase_begin=0.07, phase_end=0.5).scored_steps, 43)

# No values, no scored steps: no percentage.
check("empty", score({}).percent, None)
check("nothing scored", score({1: 1.0, 2: 1.0}, phase_begin=0.0, phase_end=1.0).percent, None)

for bad in ({"window": 1}, {"sigma": 0.0}, {"phase_begin": 0.9, "phase_end": 0.1}, {"phase_end": 1.5}):
    try:
        SpikeOptions(**bad)
        failures.append(f"SpikeOptions({bad}) did not raise")
    except ValueError:
        pass

# Random walks with random spikes against the reference, over window, sigma and phase options.
rng = random.Random(19)
for trial in range(12):
    num_steps = rng.randrange(50, 3000)
    level, steps = 3.0, {}
    for t in range(1, num_steps + 1):
        level += rng.gauss(0, 0.01)
        steps[t] = level + rng.gauss(0, 0.05) + (rng.choice((-1, 1)) * rng.uniform(0.3, 2) if rng.random() < 0.01 else 0)
    window, sigma = rng.choice((10, 100, 1000)), rng.choice((3.0, 5.0, 7.0))
    begin, end = rng.choice((("0.1", "0.9"), ("0", "1"), ("0.25", "0.5")))
    want = reference.spike_score(steps, window, sigma, begin, end)
    got = score(steps, window=window, sigma=sigma, phase_begin=float(begin), phase_end=float(end))
    check(f"random trial {trial} (n {num_steps}, window {window}, sigma {sigma}, phase {begin}-{end})",
          (got.spikes, got.scored_steps, got.spike_iters.tolist()), (want[1], want[2], want[3]))

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("spike score: all checks passed")
