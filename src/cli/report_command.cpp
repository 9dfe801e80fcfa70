// `prores report` (report_command.h): finds the Python interpreter and hands the process to prores_tools.report.
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

}  // namespace

int run_report_command(const std::vector<std::string>& args, std::ostream& out) {
  const std::string python = report_python();
  std::vector<std::string> command = {python, "-m", "prores_tools.report"};
  command.insert(command.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& word : command) argv.push_back(word.data());
  argv.push_back(nullptr);
  prepend_python_path();
  out.flush();
  std::fflush(stdout);  // std::cout synchronised with stdio writes into stdout's buffer
  execvp(python.c_str(), argv.data());
  PRORES_FAIL("cannot run ", python, " (", std::strerror(errno),
              "; set PRORES_REPORT_PYTHON to a Python 3 with numpy and matplotlib)");
}

}  // namespace prores
