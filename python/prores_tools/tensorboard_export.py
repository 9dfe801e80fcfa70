"""`prores report --tensorboard DIR`: every scalar of metrics.jsonl as TensorBoard event files (tensorboardX's
FileWriter, the writer under its SummaryWriter), one subdirectory per run, so that `tensorboard --logdir DIR` shows
the runs side by side.

A number is written under its key at its record's iteration; a list-valued key as KEY/layer_NN (layers from 01);
the per-step arrays step_loss and step_grad_norm as loss_per_step and grad_norm_per_step at their own iterations.
The later line wins for an iteration, as everywhere in the report. Event files an earlier export left in a run's
subdirectory are replaced.
"""

import glob
import itertools
import os

from .errors import ReportError
from .run_data import as_number

PER_STEP_TAGS = {"step_loss": "loss_per_step", "step_grad_norm": "grad_norm_per_step"}
EVENT_FILE_PATTERN = "events.out.tfevents.*"


def layer_tag(key, layer, num_layers):
    return f"{key}/layer_{layer:0{max(2, len(str(num_layers)))}d}"


def scalar_events(run):
    """(tag, iteration, value) of every scalar of the run, ordered by iteration."""
    events = []
    for records in run.records.values():
        for record in records:
            for key, value in record.items():
                if key == "iter" or key in PER_STEP_TAGS or isinstance(value, (bool, str, dict)):
                    continue
                if isinstance(value, list):
                    events.extend((layer_tag(key, layer, len(value)), record["iter"], as_number(v))
                                  for layer, v in enumerate(value, 1))
                else:  # a number, or null (NaN)
                    events.append((key, record["iter"], as_number(value)))
    for array_key, tag in PER_STEP_TAGS.items():
        series = run.step_series(array_key, point_key=None)
        events.extend((tag, int(iteration), float(value)) for iteration, value in zip(series.iters, series.values))
    events.sort(key=lambda event: event[1])  # each tag's steps ascending, as TensorBoard's reader expects
    return events


def event_writer():
    """(tensorboardX.FileWriter, its Summary protobuf class); a ReportError naming the set-up when tensorboardX is
    missing."""
    try:
        from tensorboardX import FileWriter
        from tensorboardX.proto.summary_pb2 import Summary
    except ImportError:
        raise ReportError("--tensorboard needs tensorboardX, which bash launch/setup.sh installs into build/python "
                          "(pip install tensorboardX==2.6.5)") from None
    return FileWriter, Summary


def export_tensorboard(runs, directories, out_dir, writer):
    """Writes each run's events under out_dir/<its entry of directories>, with writer = event_writer(): one event
    per iteration carrying all its scalars (what SummaryWriter.add_scalar writes one value at a time, ~8x slower
    over a long run's millions of per-layer values)."""
    file_writer_class, summary_class = writer
    for run, directory in zip(runs, directories):
        run_dir = os.path.join(out_dir, directory)
        for stale in glob.glob(os.path.join(run_dir, EVENT_FILE_PATTERN)):
            os.remove(stale)
        file_writer = file_writer_class(run_dir)
        for iteration, events in itertools.groupby(scalar_events(run), key=lambda event: event[1]):
            values = [summary_class.Value(tag=tag, simple_value=value) for tag, _, value in events]
            file_writer.add_summary(summary_class(value=values), iteration)
        file_writer.close()
