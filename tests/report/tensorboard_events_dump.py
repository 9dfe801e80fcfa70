#!/usr/bin/env python3
"""Prints the scalars of every run subdirectory of a TensorBoard log directory as JSON,
{run: {tag: [[step, value], ...]}}, read with tensorboard's own EventAccumulator (tests/report/tensorboard_check.py
runs it with the reference interpreter, which has tensorboard: launch/install_references.sh).

    python tests/report/tensorboard_events_dump.py LOGDIR
"""

import json
import os
import sys

from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

logdir = sys.argv[1]
result = {}
for run in sorted(os.listdir(logdir)):
    accumulator = EventAccumulator(os.path.join(logdir, run), size_guidance={SCALARS: 0})  # 0: keep every event
    accumulator.Reload()
    result[run] = {tag: [[event.step, event.value] for event in accumulator.Scalars(tag)]
                   for tag in accumulator.Tags()[SCALARS]}
json.dump(result, sys.stdout)
