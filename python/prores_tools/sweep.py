"""`prores sweep GRID --out DIR [--jobs N] [--dry-run] [--report] [--retry-failed]` (also `python -m
prores_tools.sweep`): runs a grid of `prores train` runs (docs/sweeps.md), resumably, then writes DIR/results.csv,
results_mean.csv, results.md, the paper's figures in DIR/figures/, with --report a `prores report` of the
finished runs in DIR/report, and DIR/index.html linking them.

Exit status: 0, 1 when a run failed or the grid is refused (one line on stderr, before any run), 130 when stopped
by SIGINT/SIGTERM (the runs stopped are resumed next time).
"""

import argparse
import html
import os
import shlex
import shutil
import sys

from .errors import ReportError
from .html_page import CSS, Figure, Section, _section_html
from .report import add_spike_arguments, spike_options
from .sweep_grid import TrainOptions, parse_grid
from .sweep_runner import (DIVERGED, FINISHED, REPO_ROOT, SweepRunner, plan_run, progress, threads_per_rank,
                           train_command)


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        raise ReportError(message)


def default_prores():
    return os.environ.get("PRORES_EXECUTABLE") or os.path.join(REPO_ROOT, "build", "prores")


def parse_args(argv):
    parser = _ArgumentParser(
        prog="prores sweep",
        description="Runs a grid of prores train runs given in a TOML file (docs/sweeps.md), resumably, and writes "
                    "a results table, the paper's figures and an index.html into --out.")
    parser.add_argument("grid", metavar="GRID", help="the grid file (TOML)")
    parser.add_argument("--out", required=True, metavar="DIR", help="the sweep directory: runs/, results, figures")
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="runs at once (default 1); each gets "
                        "OMP_NUM_THREADS = max(1, cores / (N x ranks))")
    parser.add_argument("--dry-run", action="store_true", help="print the runs and their commands, run nothing")
    parser.add_argument("--report", action="store_true", help="also a prores report of the finished and diverged "
                        "runs into DIR/report (activation-norm heatmaps: the paper's Figure 3)")
    parser.add_argument("--retry-failed", action="store_true", help="run failed runs again")
    parser.add_argument("--prores", default=default_prores(), metavar="PATH",
                        help="the prores executable (default: the one running this sweep, else build/prores)")
    add_spike_arguments(parser)
    args = parser.parse_args(argv)
    if args.jobs < 1:
        raise ReportError(f"--jobs must be at least 1, not {args.jobs}")
    return args


def dry_run(grid, args):
    threads = threads_per_rank(args.jobs, grid.ranks)
    print(f"{len(grid.runs)} runs, {args.jobs} at a time, OMP_NUM_THREADS={threads}")
    for index, run in enumerate(grid.runs, 1):
        plan = plan_run(args.out, run, args.retry_failed)
        action = {"skip": f"skip: {plan.reason}", "resume": "resume from its checkpoint", "start": "start"}[plan.action]
        print(f"run {index}/{len(grid.runs)}: {run.name} ({action})")
        print("  " + shlex.join(train_command(grid, run, args.out, args.prores, plan.action == "resume")))
    return 0


def write_report(args, rows):
    """`prores report` of the finished and diverged runs, in this process; False when it failed or had no run."""
    from . import report
    runs = [row for row in rows if row.status in (FINISHED, DIVERGED)]
    if not runs:
        progress("--report: no finished run to report on")
        return False
    progress(f"prores report of {len(runs)} runs into {os.path.join(args.out, 'report')}")
    argv = [row.directory for row in runs] + ["--out", os.path.join(args.out, "report"),
                                              "--labels", ",".join(row.run.name for row in runs),
                                              "--spike-window", str(args.spike_window),
                                              "--spike-sigma", repr(args.spike_sigma),
                                              "--spike-phase", ",".join(map(repr, args.spike_phase))]
    return report.main(argv) == 0


def write_index(out, grid, tables, figure_files, report_written):
    section = Section("Figures", [Figure(os.path.join("figures", file), caption) for file, caption in figure_files])
    statuses = {}
    for row in tables.rows:
        statuses[row.status] = statuses.get(row.status, 0) + 1
    run_items = "".join(
        f'<li><a href="{html.escape(os.path.join("runs", row.run.name, "train.log"))}">{html.escape(row.run.name)}</a>'
        f": {html.escape(row.status)}</li>\n" for row in tables.rows)
    report_link = ('<p>Per-run figures (loss curves, α and activation-norm heatmaps, the paper\'s Figure 3): '
                   '<a href="report/index.html">report/index.html</a></p>\n' if report_written else "")
    page = (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>prores sweep</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n<h1>prores sweep: {html.escape(os.path.basename(grid.path))}</h1>\n"
            f"<p>{len(tables.rows)} runs: "
            + html.escape(", ".join(f"{n} {status}" for status, n in sorted(statuses.items())))
            + '. Tables also in <a href="results.md">results.md</a>, <a href="results.csv">results.csv</a>, '
              '<a href="results_mean.csv">results_mean.csv</a>.</p>\n' + report_link
            + "<h2>Mean over seeds</h2>\n<p>Finished runs only; ± the sample standard deviation.</p>\n"
            + tables.html_table(tables.mean_table()) + "\n" + _section_html(section)
            + "<h2>Runs</h2>\n" + tables.html_table(tables.run_table())
            + f"\n<h2>Logs</h2>\n<ul>\n{run_items}</ul>\n</body>\n</html>\n")
    with open(os.path.join(out, "index.html"), "w") as f:
        f.write(page)


def write_results(args, grid):
    from . import sweep_figures
    from .sweep_results import ResultTables, collect_rows
    rows = collect_rows(grid, args.out, spike_options(args))
    tables = ResultTables(grid, rows)
    tables.write(args.out)
    figures_dir = os.path.join(args.out, "figures")
    os.makedirs(figures_dir, exist_ok=True)
    x = grid.x_axis or "method"
    figure_files = []
    for file, caption, draw in (
            ("val_ppl.png", f"Final validation perplexity against {x} per method (the paper's Figure 1)",
             sweep_figures.val_ppl_figure),
            ("spike_score.png", f"Loss and gradient-norm spike scores against {x} per method (the paper's Figure 2)",
             sweep_figures.spike_figure)):
        if draw(os.path.join(figures_dir, file), grid, tables.groups):
            figure_files.append((file, caption))
        else:
            progress(f"no finished run has the values of {file}: not drawn")
    report_written = write_report(args, rows) if args.report else False
    write_index(args.out, grid, tables, figure_files, report_written)
    progress(f"wrote {os.path.join(args.out, 'results.md')} and {os.path.join(args.out, 'index.html')}")
    return report_written or not args.report


def sweep(args):
    options = TrainOptions.from_binary(args.prores)
    grid = parse_grid(args.grid, options)
    if args.dry_run:
        return dry_run(grid, args)
    os.makedirs(os.path.join(args.out, "runs"), exist_ok=True)
    copy = os.path.join(args.out, "grid.toml")
    if not (os.path.exists(copy) and os.path.samefile(args.grid, copy)):
        shutil.copyfile(args.grid, copy)
    status = SweepRunner(grid, args.out, args.prores, args.jobs, args.retry_failed).run()
    if not write_results(args, grid) and status == 0:
        status = 1
    return status


def main(argv=None):
    try:
        return sweep(parse_args(argv))
    except ReportError as e:
        print(f"prores sweep: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # stdout closed early (--dry-run | head)
        return 1
    except OSError as e:
        print(f"prores sweep: {e.filename + ': ' if e.filename else ''}{e.strerror}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
