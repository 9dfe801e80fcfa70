// `prores report`: the offline report over runs' metrics.jsonl and similarity.jsonl (docs/diagnostics.md,
// "Reports"), which is Python (python/prores_tools): this command only replaces itself with that program.
#pragma once
#include <ostream>
#include <string>
#include <vector>

namespace prores {

// Replaces the process (execvp) with `PYTHON -m prores_tools.report ARGS...`, PYTHON being $PRORES_REPORT_PYTHON
// when set, else the build's virtual environment (<build>/python/bin/python3) when it exists, else
// /usr/bin/python3, with <source>/python put first on PYTHONPATH. `out` is flushed first. Returns only when the
// program cannot be started: throws prores::Error naming the interpreter.
int run_report_command(const std::vector<std::string>& args, std::ostream& out);

}  // namespace prores
