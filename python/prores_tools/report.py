"""`prores report RUN [RUN ...] --out DIR` (also `python -m prores_tools.report`): figures, a summary table and
one index.html comparing runs, from their metrics.jsonl and similarity.jsonl (docs/diagnostics.md, "Reports");
--tensorboard DIR also writes their scalars as TensorBoard event files.

Missing data leaves out its figure or column with a note on the page; bad input is one line on stderr and exit 1.
"""

import argparse
import os
import re
import sys

import numpy as np

from . import figures
from .errors import ReportError
from .html_page import Figure, Section, render
from .run_data import RunData, layer_matrix, point_series
from .spike_score import SpikeOptions
from .summary import SummaryTable, summarize
from .tensorboard_export import event_writer, export_tensorboard

DEFAULT_PROFILE_COUNT = 5
BRANCH_KEYS = (("attention", "probe/attn_branch_norm", "probe/attn_branch_scaled_norm"),
               ("MLP", "probe/mlp_branch_norm", "probe/mlp_branch_scaled_norm"))
SIMILARITY_PANELS = (("block output", "similarity/block_output"), ("attention branch", "similarity/attn_branch"),
                     ("MLP branch", "similarity/mlp_branch"))


def progress(message):
    print(f"report: {message}", file=sys.stderr, flush=True)


def _comma_list(convert, what):
    def parse(text):
        try:
            return [convert(item) for item in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got '{text}'") from None
    return parse


class _ArgumentParser(argparse.ArgumentParser):
    """Option errors as ReportError (one line, exit 1) instead of argparse's usage and exit 2."""

    def error(self, message):
        raise ReportError(message)


def parse_args(argv):
    parser = _ArgumentParser(
        prog="prores report",
        description="Figures, a summary table (CSV, Markdown) and one offline index.html comparing runs, from each "
                    "RUN/metrics.jsonl and RUN/similarity.jsonl (docs/diagnostics.md, \"Reports\").")
    parser.add_argument("runs", nargs="+", metavar="RUN", help="a run's log directory (holds metrics.jsonl)")
    parser.add_argument("--out", required=True, metavar="DIR", help="where the PNGs, summary.* and index.html go")
    parser.add_argument("--labels", type=_comma_list(str, "labels"), metavar="A,B,...",
                        help="one label per RUN (default: the directories' names)")
    parser.add_argument("--log-x", action="store_true", help="logarithmic iteration axis on the overlays")
    parser.add_argument("--profile-steps", type=_comma_list(int, "iterations"), metavar="I,J,...",
                        help="iterations of the activation-norm depth profiles: the nearest probe records "
                             f"(default: {DEFAULT_PROFILE_COUNT} spread over the run)")
    add_spike_arguments(parser)
    parser.add_argument("--tensorboard", metavar="DIR", help="also write every scalar as TensorBoard event files, "
                                                             "one subdirectory per run")
    return parser.parse_args(argv)


def add_spike_arguments(parser):
    """The spike-score options --spike-window, --spike-sigma and --spike-phase (read back by spike_options)."""
    parser.add_argument("--spike-window", type=int, default=SpikeOptions.window, metavar="N",
                        help="spike score: the rolling window of previous steps (default %(default)s)")
    parser.add_argument("--spike-sigma", type=float, default=SpikeOptions.sigma, metavar="S",
                        help="spike score: standard deviations from the rolling mean (default %(default)s)")
    parser.add_argument("--spike-phase", type=_comma_list(float, "fractions"),
                        default=[SpikeOptions.phase_begin, SpikeOptions.phase_end], metavar="BEGIN,END",
                        help="spike score: the scored fraction [BEGIN, END) of each run's steps (default 0.1,0.9)")


def spike_options(args):
    if len(args.spike_phase) != 2:
        raise ReportError(f"--spike-phase takes BEGIN,END, not {','.join(map(str, args.spike_phase))}")
    try:
        return SpikeOptions(args.spike_window, args.spike_sigma, *args.spike_phase)
    except ValueError as e:
        raise ReportError(str(e)) from None


def run_labels(directories, labels):
    """The given labels, else each directory's name (its path where two names coincide)."""
    if labels is not None:
        if len(labels) != len(directories):
            raise ReportError(f"--labels has {len(labels)} labels for {len(directories)} runs")
        return labels
    names = [os.path.basename(os.path.normpath(d)) for d in directories]
    return [name if names.count(name) == 1 else os.path.normpath(d) for name, d in zip(names, directories)]


def file_stems(labels):
    """A distinct file-name stem per label (characters other than letters, digits, '.', '-', '_' become '_')."""
    stems = []
    for label in labels:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._") or "run"
        while stem in stems:
            stem += "_"
        stems.append(stem)
    return stems


def nearest_records(records, iterations):
    """The record nearest to each wanted iteration (the earlier on a tie), each once, in iteration order."""
    probe_iters = np.array([r["iter"] for r in records])
    chosen = sorted({int(np.argmin(np.abs(probe_iters - wanted))) for wanted in iterations})
    return [records[i] for i in chosen]


class Report:
    """Collects the figures and notes of one report while drawing them into `out`."""

    def __init__(self, out, log_x):
        self.out = out
        self.log_x = log_x
        self.notes = []
        self.sections = []

    def draw(self, section, file, caption, draw_function, *args, **kwargs):
        draw_function(os.path.join(self.out, file), *args, **kwargs)
        section.figures.append(Figure(file, caption))

    def overlays(self, runs, summaries):
        section = Section("All runs")
        self.sections.append(section)
        curves = {"loss": [], "val_loss": [], "grad_norm": [], "lr": []}
        for run, summary in zip(runs, summaries):
            if len(run.train_loss):
                curves["loss"].append((run.label, run.train_loss, summary.loss_spikes.spike_iters))
            if len(run.grad_norm):
                curves["grad_norm"].append((run.label, run.grad_norm, summary.grad_norm_spikes.spike_iters))
            for key, kind in (("val_loss", "validation"), ("lr", "train")):
                series = point_series(run.records[kind], key)
                if len(series):
                    curves[key].append((run.label, series, None))
        per_step = ("of every step (the logged points for a run without per-step arrays: see the notes); crosses: "
                    "the steps its spike score counts")
        for key, title, ylabel, caption, options in (
                ("loss", "Training loss", "loss", f"training loss {per_step}", {}),
                ("val_loss", "Validation loss", "validation loss", "validation loss at every evaluation",
                 {"markers": True}),
                ("grad_norm", "Gradient norm (before clipping)", "gradient norm", f"gradient norm {per_step}",
                 {"log_y": True}),
                ("lr", "Learning rate", "learning rate", "learning rate at every train record", {})):
            if curves[key]:
                self.draw(section, f"{key}.png", caption, figures.overlay, title, ylabel, curves[key],
                          log_x=self.log_x, **options)
            else:
                self.notes.append(f"no run has {key} values: no {title.lower()} figure")

    def run_figures(self, run, stem, profile_steps):
        section = Section(f"Run {run.label}")
        self.sections.append(section)
        label = run.label
        alpha = layer_matrix(run.records["train"], "alpha")
        if alpha is None:
            self.notes.append(f"{label}: no alpha in its train records: no α heatmap")
        else:
            self.draw(section, f"{stem}_alpha.png", f"{label}: ProRes residual scale α per layer over training",
                      figures.layer_heatmaps, f"{label}: α (layer × iteration)", [("", alpha)], "α", vmin=0, vmax=1)
        self.probe_figures(run, stem, profile_steps, section)
        self.similarity_figure(run, stem, section)

    def probe_figures(self, run, stem, profile_steps, section):
        label, probes = run.label, run.records["probe"]
        act_norm = layer_matrix(probes, "probe/act_norm")
        if act_norm is None:
            self.notes.append(f"{label}: no probe records (train --probe-interval): no activation-norm figures")
            return
        self.draw(section, f"{stem}_act_norm.png",
                  f"{label}: mean L2 norm of the residual stream after each block on the probe batch (log colour)",
                  figures.layer_heatmaps, f"{label}: activation norm (layer × iteration)", [("", act_norm)],
                  "activation norm", log_color=True)
        probes = [r for r in probes if isinstance(r.get("probe/act_norm"), list)]
        if profile_steps is None:
            profile_steps = np.linspace(probes[0]["iter"], probes[-1]["iter"], DEFAULT_PROFILE_COUNT)
        chosen = nearest_records(probes, profile_steps)
        self.draw(section, f"{stem}_act_norm_profile.png",
                  f"{label}: activation norm per layer at the probe records nearest to the chosen iterations",
                  figures.depth_profiles, f"{label}: activation norm by depth",
                  [("", [(f"iteration {r['iter']}", r["probe/act_norm"], i, False) for i, r in enumerate(chosen)])],
                  "activation norm")
        branch_panels = []
        for name, before, after in BRANCH_KEYS:
            recorded = [(i, r) for i, r in enumerate(chosen)
                        if isinstance(r.get(before), list) and isinstance(r.get(after), list)]
            curves = [curve for i, r in recorded
                      for curve in ((f"iteration {r['iter']}", r[before], i, False), (None, r[after], i, True))]
            if curves:
                branch_panels.append((f"{name} branch: solid before α, dashed after α", curves))
        if branch_panels:
            self.draw(section, f"{stem}_branch_norms.png",
                      f"{label}: mean L2 norm of each sublayer's branch output, before α (solid) and after α "
                      "(dashed), at the same probe records", figures.depth_profiles,
                      f"{label}: branch norms by depth", branch_panels, "branch norm")

    def similarity_figure(self, run, stem, section):
        label = run.label
        if run.similarity_file is None:
            self.notes.append(f"{label}: no similarity.jsonl (prores analyze writes it): no similarity heatmap")
            return
        panels = [(name, matrix) for name, key in SIMILARITY_PANELS
                  if (matrix := layer_matrix(run.similarity, key)) is not None]
        if not panels:
            self.notes.append(f"{label}: similarity.jsonl has no similarity records: no similarity heatmap")
            return
        lowest = min(float(np.nanmin(matrix.values)) for _, matrix in panels)
        self.draw(section, f"{stem}_similarity.png",
                  f"{label}: cosine similarity on the probe batch of each block's output and branch outputs (before "
                  "α) at each checkpoint to the final checkpoint's", figures.layer_heatmaps, f"{label}: similarity to the final model",
                  panels, "cosine similarity", vmin=min(lowest, 0.0), vmax=1.0, xlabel="checkpoint iteration")


def reading_notes(runs, summaries):
    """What was skipped or stood in while reading the runs, and what differs between them."""
    notes = [note for run in runs for note in run.notes()]
    layer_counts = sorted({n for run in runs if (n := run.num_layers()) is not None})
    if len(layer_counts) > 1:
        notes.append(f"the runs have different layer counts ({', '.join(map(str, layer_counts))}): the overlays "
                     "compare them, the heatmaps and depth profiles are per run")
    for run, summary in zip(runs, summaries):
        for name, score in (("training loss", summary.loss_spikes), ("gradient norm", summary.grad_norm_spikes)):
            if score.non_finite:
                notes.append(f"{run.label}: {score.non_finite} non-finite {name} value(s) left out of its spike score")
    return notes


def build_report(args):
    options = spike_options(args)
    writer = event_writer() if args.tensorboard else None  # before any work: tensorboardX may be missing
    labels = run_labels(args.runs, args.labels)
    runs = []
    for index, (directory, label) in enumerate(zip(args.runs, labels), 1):
        runs.append(RunData(directory, label))
        progress(f"read run {index}/{len(labels)}: {directory} ({len(runs[-1].metrics_file.records)} records)")
    summaries = [summarize(run, options) for run in runs]
    os.makedirs(args.out, exist_ok=True)
    report = Report(args.out, args.log_x)
    report.notes.extend(reading_notes(runs, summaries))
    progress("drawing the overlays")
    report.overlays(runs, summaries)
    stems = file_stems(labels)
    for index, (run, stem) in enumerate(zip(runs, stems), 1):
        progress(f"drawing run {index}/{len(runs)}: {run.label}")
        report.run_figures(run, stem, args.profile_steps)
    table = SummaryTable(summaries)
    report.notes.extend(table.notes)
    table.write_csv(os.path.join(args.out, "summary.csv"))
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(table.markdown())
    settings = (f"Spike scores: the percentage of steps at least {options.sigma:g} standard deviations from the mean "
                f"of the previous {options.window} steps, over [{options.phase_begin:g}, {options.phase_end:g}) of "
                "each run's steps (docs/diagnostics.md, \"Spike score\").")
    page = render("prores report", list(zip(labels, args.runs)), settings, table.html(), report.notes,
                  report.sections)
    index_path = os.path.join(args.out, "index.html")
    with open(index_path, "w") as f:
        f.write(page)
    if args.tensorboard:
        progress(f"writing TensorBoard events to {args.tensorboard}")
        export_tensorboard(runs, stems, args.tensorboard, writer)
    print(f"report: wrote {index_path}")
    return 0


def main(argv=None):
    try:
        return build_report(parse_args(argv))
    except ReportError as e:
        print(f"prores report: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # writing into --out or --tensorboard
        print(f"prores report: {e.filename}: {e.strerror}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
