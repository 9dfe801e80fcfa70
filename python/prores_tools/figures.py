"""The report's figures as PNG files (matplotlib, Agg backend: no display needed).

Overlays of several runs' series over iterations, layer x iteration heatmaps, and depth profiles (a value per
layer at chosen iterations). Every function draws one figure, saves it to `path` and closes it.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.ticker import LogFormatter, MaxNLocator  # noqa: E402

DPI = 110
# Labels at 2, 3, 5, ... too while a logarithmic axis spans less than 2 decades.
_LOG_LABELS = LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5))


def _save(figure, path):
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def _all_positive(values):
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    return finite.size > 0 and bool(np.all(finite > 0))


def _label_log_axis(axis):
    axis.set_major_formatter(_LOG_LABELS)
    axis.set_minor_formatter(_LOG_LABELS)


def _log_y_when_positive(axes, value_lists):
    if all(_all_positive(values) for values in value_lists):
        axes.set_yscale("log")
        _label_log_axis(axes.yaxis)


def overlay(path, title, ylabel, curves, log_x=False, log_y=False, markers=False):
    """One line per (label, Series, marked_iters): marked iterations (spikes) drawn as crosses on the line."""
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for label, series, marked_iters in curves:
        line, = axes.plot(series.iters, series.values, label=label, linewidth=0.9, marker="o" if markers else None,
                          markersize=3)
        if marked_iters is not None and len(marked_iters):
            at = np.isin(series.iters, marked_iters)
            axes.plot(series.iters[at], series.values[at], "x", color=line.get_color(), markersize=8,
                      label=f"{label}: spikes")
    if log_x:
        axes.set_xscale("log")
    if log_y:
        _log_y_when_positive(axes, [series.values for _, series, _ in curves])
    axes.set(title=title, xlabel="iteration", ylabel=ylabel)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    _save(figure, path)


def _edges(centers):
    """Cell edges around sorted centers (a cell of width 1 around a single one)."""
    centers = np.asarray(centers, dtype=float)
    if centers.size == 1:
        return np.array([centers[0] - 0.5, centers[0] + 0.5])
    middles = (centers[1:] + centers[:-1]) / 2
    return np.concatenate([[2 * centers[0] - middles[0]], middles, [2 * centers[-1] - middles[-1]]])


def layer_heatmaps(path, title, panels, colorbar_label, log_color=False, vmin=None, vmax=None, xlabel="iteration"):
    """Side-by-side layer (1 at the bottom) x iteration heatmaps: panels is a list of (panel title, LayerMatrix).
    log_color: a logarithmic colour scale when every value is positive; vmin, vmax: a shared linear range."""
    figure, axes_list = plt.subplots(1, len(panels), figsize=(3 + 5 * len(panels), 4.5), squeeze=False)
    for axes, (panel_title, matrix) in zip(axes_list[0], panels):
        norm = LogNorm() if log_color and _all_positive(matrix.values) else None
        mesh = axes.pcolormesh(_edges(matrix.iters), np.arange(matrix.num_layers + 1) + 0.5,
                               np.ma.masked_invalid(matrix.values), shading="flat", cmap="viridis", norm=norm,
                               vmin=None if norm else vmin, vmax=None if norm else vmax)
        axes.set(title=panel_title, xlabel=xlabel, ylabel="layer")
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        colorbar = figure.colorbar(mesh, ax=axes, label=colorbar_label)
        if norm:
            _label_log_axis(colorbar.ax.yaxis)
    figure.suptitle(title)
    _save(figure, path)


def depth_profiles(path, title, panels, ylabel):
    """Values per layer: panels is a list of (panel title, curves), a curve (label or None for no legend entry,
    values per layer 1..L, colour index, dashed)."""
    figure, axes_list = plt.subplots(1, len(panels), figsize=(1 + 5.5 * len(panels), 4.5), squeeze=False)
    for axes, (panel_title, curves) in zip(axes_list[0], panels):
        for label, values, color, dashed in curves:
            axes.plot(np.arange(1, len(values) + 1), values, marker="o", markersize=3, label=label, color=f"C{color}",
                      linestyle="--" if dashed else "-")
        _log_y_when_positive(axes, [values for _, values, _, _ in curves])
        axes.set(title=panel_title, xlabel="layer", ylabel=ylabel)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    figure.suptitle(title)
    _save(figure, path)
