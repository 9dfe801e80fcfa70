"""Running a sweep's runs (docs/sweeps.md, "Running, resuming, statuses"): N at once in subprocesses, each in its
own directory DIR/runs/<name> with train.log, metrics.jsonl, checkpoints/ and status.json.

A run whose status.json says finished or diverged is skipped; one with a checkpoint but no final status resumes
from it (--load); a failed one runs again only with --retry-failed. SIGINT/SIGTERM asks every running trainer to
save and stop (SIGTERM to a single process, SIGUSR1 to mpirun, which forwards it to its ranks); their runs are
left "interrupted", to resume next time. A second signal kills them.
"""

import json
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from .run_data import RunData, as_number, point_series
from .errors import ReportError

FINISHED, DIVERGED, FAILED, INTERRUPTED, PENDING = "finished", "diverged", "failed", "interrupted", "pending"
FINAL = (FINISHED, DIVERGED)
DIVERGED_PPL = 1000.0  # the paper's: final validation perplexity above this is a diverged run
DIVERGED_MESSAGE = "training diverged"
LOG_TAIL_LINES = 30
POLL_SECONDS = 0.1
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def progress(message):
    print(f"sweep: {message}", file=sys.stderr, flush=True)


def duration(seconds):
    """1m02s, 1h05m, 12s."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def run_directory(out, run):
    return os.path.join(out, "runs", run.name)


def checkpoints_directory(out, run):
    return os.path.join(run_directory(out, run), "checkpoints")


def read_status(directory):
    """status.json of a run directory as a dict, or None when there is none (or it is unreadable)."""
    try:
        with open(os.path.join(directory, "status.json")) as f:
            status = json.load(f)
        return status if isinstance(status, dict) else None
    except (OSError, ValueError):
        return None


def write_status(directory, status):
    path = os.path.join(directory, "status.json")
    with open(path + ".tmp", "w") as f:
        json.dump(status, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)


def has_checkpoint(out, run):
    return os.path.isfile(os.path.join(checkpoints_directory(out, run), "latest"))


def threads_per_rank(jobs, ranks, cores=None):
    cores = cores or len(os.sched_getaffinity(0))
    return max(1, cores // (jobs * ranks))


def train_command(grid, run, out, prores, load):
    """The command of one run: prores train (or launch/mpirun.sh N prores train) with its options, its seed, its
    directory as --log-dir, its checkpoints as --save, and --load them when resuming."""
    directory = run_directory(out, run)
    if grid.ranks > 1:
        command = ["bash", os.path.join(REPO_ROOT, "launch", "mpirun.sh"), str(grid.ranks), prores, "train"]
    else:
        command = [prores, "train"]
    command += run.args
    if run.seed is not None:
        command += ["--seed", str(run.seed)]
    command += ["--log-dir", directory, "--save", checkpoints_directory(out, run)]
    if load:
        command += ["--load", checkpoints_directory(out, run)]
    return command


@dataclass
class Plan:
    """What the sweep does with a run: 'skip' (final status, or failed without --retry-failed), 'resume' or 'start'."""

    run: object
    action: str
    reason: str
    previous: dict | None


def plan_run(out, run, retry_failed):
    directory = run_directory(out, run)
    previous = read_status(directory)
    status = previous.get("status") if previous else None
    if status in FINAL:
        return Plan(run, "skip", status, previous)
    if status == FAILED and not retry_failed:
        return Plan(run, "skip", "failed (--retry-failed runs it again)", previous)
    if has_checkpoint(out, run):
        return Plan(run, "resume", "resumes from its checkpoint", previous)
    return Plan(run, "start", "retried" if status == FAILED else "new", previous)


def diverged_reason(directory):
    """Why a run that exited normally counts as diverged (the paper: final validation perplexity above 1000, or a
    non-finite loss), or None."""
    try:
        data = RunData(directory, os.path.basename(directory))
    except ReportError:
        return None
    val_ppl = point_series(data.records["validation"], "val_ppl")
    if len(val_ppl):
        final = float(val_ppl.values[-1])
        if not math.isfinite(final):
            return "final validation perplexity is not finite"
        if final > DIVERGED_PPL:
            return f"final validation perplexity {final:.6g} > {DIVERGED_PPL:g}"
    train = data.records["train"]
    if train and not math.isfinite(as_number(train[-1].get("loss"))):
        return f"loss is not finite at iteration {train[-1]['iter']}"
    return None


def _tail(path, offset, lines=LOG_TAIL_LINES):
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class _Job:
    def __init__(self, plan, index, command, directory, log_offset, process, log_file):
        self.plan, self.index, self.command, self.directory = plan, index, command, directory
        self.log_offset, self.process, self.log_file = log_offset, process, log_file
        self.started = time.monotonic()
        self.started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.stop_sent = False


class SweepRunner:
    def __init__(self, grid, out, prores, jobs=1, retry_failed=False):
        self.grid, self.out, self.prores = grid, out, prores
        self.jobs, self.retry_failed = jobs, retry_failed
        self.threads = threads_per_rank(jobs, grid.ranks)
        self.stop_requests = 0
        self.durations = []
        self.counts = {}

    def plans(self):
        return [plan_run(self.out, run, self.retry_failed) for run in self.grid.runs]

    # --- signals -------------------------------------------------------------------------------------------------
    def _on_signal(self, number, frame):
        self.stop_requests += 1

    def _stop(self, running):
        for job in running:
            if job.process.poll() is not None:
                continue
            if self.stop_requests >= 2:
                try:
                    os.killpg(job.process.pid, signal.SIGKILL)
                except OSError:
                    pass
            elif not job.stop_sent:
                job.stop_sent = True
                try:  # mpirun forwards SIGUSR1 to its ranks (SIGTERM would make it kill them)
                    job.process.send_signal(signal.SIGUSR1 if self.grid.ranks > 1 else signal.SIGTERM)
                except OSError:
                    pass

    # --- one run -------------------------------------------------------------------------------------------------
    def _launch(self, plan, index):
        run = plan.run
        directory = run_directory(self.out, run)
        os.makedirs(directory, exist_ok=True)
        command = train_command(self.grid, run, self.out, self.prores, plan.action == "resume")
        if plan.previous and plan.previous.get("options") not in (None, run.args):
            progress(f"warning: {run.name}: its options changed since its last attempt")
        log_path = os.path.join(directory, "train.log")
        log_file = open(log_path, "ab")
        log_offset = log_file.tell()
        log_file.write(f"=== sweep: {time.strftime('%Y-%m-%d %H:%M:%S')}: {shlex.join(command)}\n".encode())
        log_file.flush()
        env = dict(os.environ, OMP_NUM_THREADS=str(self.threads))
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, start_new_session=True)  # Ctrl-C reaches the sweep, not the trainers
        verb = "resumed" if plan.action == "resume" else "started"
        progress(f"run {index}/{len(self.grid.runs)} {verb}: {run.name}")
        return _Job(plan, index, command, directory, log_offset, process, log_file)

    def _finish(self, job):
        job.log_file.close()
        code = job.process.returncode
        wall = time.monotonic() - job.started
        log_path = os.path.join(job.directory, "train.log")
        tail = _tail(log_path, job.log_offset)
        previous = job.plan.previous or {}
        earlier_wall = previous.get("wall_s", 0.0) if previous.get("status") == INTERRUPTED else 0.0
        reason = None
        if DIVERGED_MESSAGE in tail:
            status = DIVERGED
            reason = next(line for line in reversed(tail.splitlines()) if DIVERGED_MESSAGE in line).strip()
        elif code == 0 and "(stop requested)" in tail:  # the trainer saved on SIGTERM/SIGUSR1 and stopped
            status = INTERRUPTED
        elif code == 0:
            reason = diverged_reason(job.directory)
            status = DIVERGED if reason else FINISHED
        elif job.stop_sent:  # stopped before it could save (e.g. still starting), or killed by a second signal
            status = INTERRUPTED
        else:
            status = FAILED
            reason = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        record = {"status": status, "exit_code": code, "wall_s": round(earlier_wall + wall, 3),
                  "attempt_wall_s": round(wall, 3), "attempts": previous.get("attempts", 0) + 1,
                  "started": job.started_at, "ended": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "resumed": job.plan.action == "resume", "command": shlex.join(job.command),
                  "argv": job.command, "options": job.plan.run.args, "omp_num_threads": self.threads}
        if reason:
            record["reason"] = reason
        if status in (FAILED, DIVERGED):
            record["log_tail"] = tail
        write_status(job.directory, record)
        self.counts[status] = self.counts.get(status, 0) + 1
        return status, wall, reason

    # --- the sweep -----------------------------------------------------------------------------------------------
    def run(self):
        """Runs every planned run; returns 0, 1 when a run failed, 130 when stopped by a signal."""
        plans = self.plans()
        queue = []
        for index, plan in enumerate(plans, 1):
            if plan.action == "skip":
                progress(f"run {index}/{len(plans)} skipped ({plan.reason}): {plan.run.name}")
                self.counts["skipped"] = self.counts.get("skipped", 0) + 1
            else:
                queue.append((index, plan))
        total = len(queue)
        progress(f"{total} of {len(plans)} runs to go, {self.jobs} at a time, OMP_NUM_THREADS={self.threads}"
                 f"{f' x {self.grid.ranks} ranks' if self.grid.ranks > 1 else ''}")
        handlers = {number: signal.signal(number, self._on_signal) for number in (signal.SIGINT, signal.SIGTERM)}
        running = []
        completed = 0
        sweep_start = time.monotonic()
        try:
            while queue or running:
                if self.stop_requests:
                    if queue:
                        progress(f"stopping: asking {len(running)} running trainer(s) to save and stop; "
                                 f"{len(queue)} run(s) not started (run the sweep again to resume)")
                        queue = []
                    self._stop(running)
                while queue and len(running) < self.jobs and not self.stop_requests:
                    index, plan = queue.pop(0)
                    running.append(self._launch(plan, index))
                for job in [job for job in running if job.process.poll() is not None]:
                    running.remove(job)
                    status, wall, reason = self._finish(job)
                    completed += 1
                    if status in (FINISHED, DIVERGED, FAILED):
                        self.durations.append(wall)
                    detail = f" ({reason})" if reason else ""
                    left = len(queue) + len(running)
                    eta = ""
                    if left and self.durations and not self.stop_requests:
                        mean = sum(self.durations) / len(self.durations)
                        eta = f", ETA {duration(mean * left / self.jobs)}"
                    verb = "finished" if status == FINISHED else status
                    progress(f"run {job.index}/{len(plans)} {verb} in {duration(wall)}{detail}: {job.plan.run.name}"
                             f" [{completed}/{total} done{eta}]")
                    if status == FAILED:
                        progress(f"  log tail of {os.path.join(job.directory, 'train.log')}:")
                        for line in _tail(os.path.join(job.directory, "train.log"), job.log_offset, 5).splitlines():
                            progress(f"  | {line}")
                time.sleep(POLL_SECONDS)
        finally:
            for number, handler in handlers.items():
                signal.signal(number, handler)
            for job in running:  # only after an exception: make sure no trainer outlives the sweep
                try:
                    os.killpg(job.process.pid, signal.SIGTERM)
                except OSError:
                    pass
        summary = ", ".join(f"{count} {status}" for status, count in sorted(self.counts.items()))
        progress(f"done in {duration(time.monotonic() - sweep_start)}: {summary or 'nothing to do'}")
        if self.stop_requests:
            return 130
        return 1 if self.counts.get(FAILED) else 0
