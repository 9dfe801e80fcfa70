"""A sweep's figures (docs/sweeps.md, "Figures"), after the paper's: final validation perplexity against depth per
method (Figure 1) and loss and gradient-norm spike scores against depth (Figure 2); x is the num-layers axis, else
the grid's first axis, else the methods. One line per method (and per value of the other axes); each point is the
mean over the finished seeds with a bar from the lowest to the highest; diverged runs are crosses on the top edge.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402

from .figures import DPI, _label_log_axis  # noqa: E402
from .sweep_grid import value_text  # noqa: E402


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class XAxis:
    """Where each group sits on x: the values themselves when they are all numbers, else their order."""

    def __init__(self, grid):
        self.axis = grid.x_axis
        self.values = list(grid.axes[self.axis]) if self.axis else list(grid.methods) or [None]
        self.numeric = all(_is_number(v) for v in self.values)
        self.label = self.axis or "method"

    def of(self, group):
        return group.axis_values[self.axis] if self.axis else group.method

    def position(self, value):
        return float(value) if self.numeric else float(self.values.index(value))

    def decorate(self, axes):
        positions = [self.position(v) for v in self.values]
        axes.set_xticks(positions)
        axes.set_xticklabels([value_text(v) if v is not None else "" for v in self.values],
                             rotation=0 if self.numeric else 30, ha="center" if self.numeric else "right")
        axes.set_xlabel("depth (layers)" if self.axis == "num-layers" else self.label)


LINE_STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P")


def lines(grid, groups, x):
    """Groups by line: (label, style, [groups]) for each method (a colour) and each combination of the other axes'
    values (a line style and marker)."""
    result, methods, others_seen = {}, [], []
    for group in groups:
        others = tuple(f"{axis}={value_text(value)}" for axis, value in group.axis_values.items() if axis != x.axis)
        method = group.method if x.axis is not None else None
        if method not in methods:
            methods.append(method)
        if others not in others_seen:
            others_seen.append(others)
        label = ", ".join(([method] if method is not None else []) + list(others)) or "runs"
        if label not in result:
            m, o = methods.index(method), others_seen.index(others)
            result[label] = ({"color": f"C{m % 10}", "linestyle": LINE_STYLES[o % len(LINE_STYLES)],
                              "marker": MARKERS[o % len(MARKERS)]}, [])
        result[label][1].append(group)
    return [(label, style, line_groups) for label, (style, line_groups) in result.items()]


def _draw_metric(axes, grid, groups, x, key, log_y):
    """One metric's lines; diverged runs are crosses near the top edge, a row per line, with k/n seeds beside."""
    top = blended_transform_factory(axes.transData, axes.transAxes)
    any_diverged = False
    drawn_values = []
    all_lines = lines(grid, groups, x)
    positions_all = [x.position(v) for v in x.values]
    gap = min((b - a for a, b in zip(sorted(positions_all), sorted(positions_all)[1:])), default=1.0) or 1.0
    for row, (label, style, line_groups) in enumerate(all_lines):
        color = style["color"]
        height = 0.97 - 0.035 * row
        dodge = gap * 0.12 * (row - (len(all_lines) - 1) / 2) / max(len(all_lines) - 1, 1)  # bars side by side
        points = []
        for group in line_groups:
            stats = group.stats(key)
            position = x.position(x.of(group)) + dodge
            if stats is not None:
                mean, _, low, high, _ = stats
                points.append((position, mean, low, high))
            if group.diverged:
                any_diverged = True
                axes.plot([position], [height], "x", color=color, markersize=8, markeredgewidth=2, transform=top,
                          clip_on=False)
                axes.annotate(f"{len(group.diverged)}/{len(group.rows)}", (position, height), xycoords=top,
                              textcoords="offset points", xytext=(5, -3), fontsize=7, color=color)
        points.sort()
        if points:
            positions, means, lows, highs = (np.array(column) for column in zip(*points))
            axes.errorbar(positions, means, yerr=[means - lows, highs - means], markersize=4, capsize=3,
                          label=label, linewidth=1.2, **style)
            drawn_values += list(lows) + list(highs)
        elif any(group.diverged for group in line_groups):
            axes.plot([], [], "x", color=color, markeredgewidth=2, label=f"{label} (no finished run)")
    if any_diverged:
        axes.plot([], [], "x", color="0.3", markeredgewidth=2, label="diverged: k/n seeds (top)")
    if log_y and drawn_values and min(drawn_values) > 0:
        axes.set_yscale("log")
        _label_log_axis(axes.yaxis)
    if any_diverged:  # room for the rows of crosses
        low, high = axes.get_ylim()
        if axes.get_yscale() == "log":
            axes.set_ylim(low, high * (high / low) ** (0.04 * len(all_lines)))
        else:
            axes.set_ylim(low, high + (high - low) * 0.04 * len(all_lines))
    x.decorate(axes)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize="small")
    return bool(drawn_values)


def _save(figure, path):
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def val_ppl_figure(path, grid, groups):
    """Figure 1. Returns False (nothing drawn, no file) when no finished run has a validation perplexity."""
    x = XAxis(grid)
    figure, axes = plt.subplots(figsize=(8, 5))
    drawn = _draw_metric(axes, grid, groups, x, "final_val_ppl", log_y=True)
    axes.set(title="Final validation perplexity (mean over seeds; bars: min to max)", ylabel="validation perplexity")
    if not drawn and not any(group.diverged for group in groups):
        plt.close(figure)
        return False
    _save(figure, path)
    return True


def spike_figure(path, grid, groups):
    """Figure 2: the loss and the gradient-norm spike scores side by side."""
    x = XAxis(grid)
    figure, axes_list = plt.subplots(1, 2, figsize=(13, 5))
    drawn = False
    for axes, key, title in zip(axes_list, ("loss_spike_score_pct", "grad_norm_spike_score_pct"),
                                ("Loss spike score", "Gradient-norm spike score")):
        drawn |= _draw_metric(axes, grid, groups, x, key, log_y=False)
        axes.set(title=f"{title} (mean over seeds; bars: min to max)", ylabel="spike score (%)")
        axes.set_ylim(bottom=0, top=max(axes.get_ylim()[1], 1.0))
    if not drawn and not any(group.diverged for group in groups):
        plt.close(figure)
        return False
    _save(figure, path)
    return True
