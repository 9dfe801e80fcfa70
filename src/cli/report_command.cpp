// `prores report` and `prores sweep` (report_command.h): find the Python interpreter and hand the process to
// prores_tools.report or prores_tools.sweep.
// PRORES_REPORT_PYTHONPATH and PRORES_REPORT_BUILD_PYTHON come from CMakeLists.txt (target prores_cli).
#include "cli/report_command.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/check.h"

namespace prores {

namespace {

std::string report_python() {
  const char* chosen = std::getenv("PRORES_REPORT_PYTHON");
  if (chosen && *chosen) return chosen;
  if (std::filesystem::exists(PRORES_REPORT_BUILD_PYTHON)) return PRORES_REPORT_BUILD_PYTHON;
  return "/usr/bin/python3";
}

void prepend_python_path() {
  const char* current = std::getenv("PYTHONPATH");
  std::string path = PRORES_REPORT_PYTHONPATH;
  if (current && *current) path += std::string(":") + current;
  PRORES_CHECK(setenv("PYTHONPATH", path.c_str(), 1) == 0, "cannot set PYTHONPATH: ",
               std::strerror(errno));
}

// This executable's path, for the Python tools that run prores themselves (prores sweep); unset when unknown.
void export_executable_path() {
  std::error_code error;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (!error) setenv("PRORES_EXECUTABLE", self.c_str(), 1);
}

}  // namespace

int run_prores_tools_module(const std::string& module, const std::vector<std::string>& args, std::ostream& out) {
  const std::string python = report_python();
  std::vector<std::string> command = {python, "-m", module};
  command.insert(command.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& word : command) argv.push_back(word.data());
  argv.push_back(nullptr);
  prepend_python_path();
  export_executable_path();
  out.flush();
  std::fflush(stdout);  // std::cout synchronised with stdio writes into stdout's buffer
  execvp(python.c_str(), argv.data());
  PRORES_FAIL("cannot run ", python, " (", std::strerror(errno),
              "; set PRORES_REPORT_PYTHON to a Python 3 with numpy and matplotlib)");
}

int run_report_command(const std::vector<std::string>& args, std::ostream& out) {
  return run_prores_tools_module("prores_tools.report", args, out);
}

int run_sweep_command(const std::vector<std::string>& args, std::ostream& out) {
  return run_prores_tools_module("prores_tools.sweep", args, out);
}

}  // namespace prores
