// `prores report` and `prores sweep`: the offline report over runs' metrics.jsonl and similarity.jsonl
// (docs/diagnostics.md, "Reports") and the sweep runner over a grid of training runs (docs/sweeps.md), both Python
// (python/prores_tools): these commands only replace themselves with that program.
#pragma once
#include <ostream>
#include <string>
#include <vector>

namespace prores {

// Replaces the process (execvp) with `PYTHON -m MODULE ARGS...`, PYTHON being $PRORES_REPORT_PYTHON when set, else
// the build's virtual environment (<build>/python/bin/python3) when it exists, else /usr/bin/python3, with
// <source>/python put first on PYTHONPATH and $PRORES_EXECUTABLE set to this executable's path (so that a sweep
// trains with the same prores). `out` is flushed first. Returns only when the program cannot be started: throws
// prores::Error naming the interpreter.
int run_prores_tools_module(const std::string& module, const std::vector<std::string>& args, std::ostream& out);

// `prores report ARGS...`: prores_tools.report.
int run_report_command(const std::vector<std::string>& args, std::ostream& out);

// `prores sweep ARGS...`: prores_tools.sweep.
int run_sweep_command(const std::vector<std::string>& args, std::ostream& out);

}  // namespace prores
