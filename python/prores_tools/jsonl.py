"""Tolerant reading of the JSON-lines files a run appends to (metrics.jsonl, similarity.jsonl).

A run killed mid-write leaves a truncated last line, and a resumed run appends after it, so a line that is blank,
not valid UTF-8, not JSON, not a JSON object, or has no integer "iter" is skipped and counted instead of failing.
"""

import json
from dataclasses import dataclass, field


@dataclass
class JsonlFile:
    """The records of one file in file order, each a dict with an integer "iter", and the lines skipped."""

    path: str
    records: list = field(default_factory=list)
    skipped_lines: int = 0

    def skipped_note(self):
        """'skipped N malformed lines in PATH', or None when every line was read."""
        if not self.skipped_lines:
            return None
        plural = "" if self.skipped_lines == 1 else "s"
        return f"skipped {self.skipped_lines} malformed line{plural} in {self.path}"


def _parse_record(raw_line):
    try:
        record = json.loads(raw_line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    iteration = record.get("iter")
    if not isinstance(iteration, int) or isinstance(iteration, bool):
        return None
    return record


def read_jsonl(path):
    """Reads PATH; raises OSError when it cannot be opened or read."""
    with open(path, "rb") as f:
        raw_lines = f.read().splitlines()
    result = JsonlFile(path)
    for raw_line in raw_lines:
        record = _parse_record(raw_line)
        if record is None:
            result.skipped_lines += 1
        else:
            result.records.append(record)
    return result
