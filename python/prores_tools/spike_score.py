"""The spike score of a per-step training series (docs/diagnostics.md, "Spike score"; the paper's §3, from OLMo 2).

The percentage of the scored steps whose value lies at least `sigma` population standard deviations from the
mean of the previous `window` values of the series. Scored are the steps t (1-based iterations) with
begin·N <= t-1 < end·N, N being the series' last iteration, that have at least 2 earlier values; a step early in the
run uses the earlier values it has. Non-finite values (null in metrics.jsonl) are left out of the series first, and
a step equal to its window's mean is never a spike (which matters only when the window is constant).
"""

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

MIN_HISTORY = 2
_ROWS_PER_CHUNK = 4096  # windows held at once: bounds memory to _ROWS_PER_CHUNK · window floats


@dataclass(frozen=True)
class SpikeOptions:
    window: int = 1000
    sigma: float = 7.0
    phase_begin: float = 0.1
    phase_end: float = 0.9

    def __post_init__(self):
        if self.window < MIN_HISTORY:
            raise ValueError(f"spike window must be at least {MIN_HISTORY}, not {self.window}")
        if not self.sigma > 0:
            raise ValueError(f"spike sigma must be positive, not {self.sigma}")
        if not 0 <= self.phase_begin < self.phase_end <= 1:
            raise ValueError(f"spike phase must be BEGIN,END with 0 <= BEGIN < END <= 1, not "
                             f"{self.phase_begin},{self.phase_end}")


@dataclass(frozen=True)
class SpikeScore:
    percent: float | None  # None when no step was scored
    spikes: int
    scored_steps: int
    non_finite: int  # values left out of the series
    spike_iters: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def phase_steps(num_steps, options):
    """The 0-based step indices [first, end) of the phase: ceil(begin·N), ceil(end·N), with the bounds taken as the
    decimals they print as (0.1 is 1/10), so that no rounding moves a step in or out."""
    def bound(fraction):
        return math.ceil(Fraction(repr(fraction)) * num_steps)
    return bound(options.phase_begin), bound(options.phase_end)


def spike_score(iters, values, options=SpikeOptions()):
    """The spike score of `values` at `iters` (ascending 1-based iterations)."""
    iters = np.asarray(iters, dtype=np.int64)
    values = np.asarray(values, dtype=float)
    if len(iters) == 0:
        return SpikeScore(None, 0, 0, 0)
    first, end = phase_steps(int(iters[-1]), options)
    finite = np.isfinite(values)
    iters, values = iters[finite], values[finite]
    step_indices = iters - 1
    positions = np.flatnonzero((step_indices >= first) & (step_indices < end) & (np.arange(len(values)) >= MIN_HISTORY))
    # Row k of `windows` holds values[k-window : k], NaN-padded where k < window.
    windows = np.lib.stride_tricks.sliding_window_view(np.concatenate([np.full(options.window, np.nan), values]),
                                                       options.window)
    is_spike = np.zeros(len(positions), dtype=bool)
    for start in range(0, len(positions), _ROWS_PER_CHUNK):
        chunk = positions[start:start + _ROWS_PER_CHUNK]
        history = windows[chunk]
        mean = np.nanmean(history, axis=1)
        deviation = np.abs(values[chunk] - mean)
        is_spike[start:start + len(chunk)] = (deviation >= options.sigma * np.nanstd(history, axis=1)) & (deviation > 0)
    scored = len(positions)
    spikes = int(np.count_nonzero(is_spike))
    return SpikeScore(100.0 * spikes / scored if scored else None, spikes, scored, int(np.count_nonzero(~finite)),
                      iters[positions[is_spike]])
